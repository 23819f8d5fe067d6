#[test]
fn prof() {
    let ex = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for (m, r) in [("models/ppocr_mobile_v2_cls.onnx", "models/refs/ppocr_mobile_v2_cls/sample_0.json"), ("bench/bench_mlp.onnx", "bench/bench_mlp.ref0.json")] {
        let bytes = std::fs::read(ex.join(m)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ex.join(r)).unwrap()).unwrap();
        let input = verity_engine::Tensors::from_json(&v["inputs"]).unwrap();
        let e = verity_engine::ExactModel::compile(&bytes, &Default::default()).unwrap();
        e.run_exact(&input).unwrap();
        eprintln!("=== {m}");
        std::env::set_var("VERITY_EXACT_PROFILE", "1");
        e.run_exact(&input).unwrap();
        std::env::remove_var("VERITY_EXACT_PROFILE");
    }
}
