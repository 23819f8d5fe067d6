//! `verity bench`: single-threaded latency of the example models on tract
//! (verity-engine) next to onnxruntime, measured in the same run.
//!
//! Tract runs in-process through [`TractEngine::prepare`] and
//! [`verity_engine::PreparedModel::time_runs`] (tract's default executor is
//! single-threaded). onnxruntime runs in `scripts/ort_bench.py` (embedded in
//! the binary, run with `--python`), one session per model with
//! `intra_op_num_threads=1, inter_op_num_threads=1`, sequential execution,
//! on the same input file, with the same warm-up and run budget.

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use verity_engine::{Tensors, TractEngine};

/// The onnxruntime side of the benchmark (`scripts/ort_bench.py`).
const ORT_SCRIPT: &str = include_str!("../../../scripts/ort_bench.py");
/// Exit status of the script when numpy or onnxruntime is missing.
const ORT_MISSING_EXIT: i32 = 3;
const INSTALL_HINT: &str = "pip install -r scripts/requirements-bench.txt";
/// Untimed runs before timing, on both engines.
const WARMUP_RUNS: usize = 5;

/// Arguments of `verity bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Folder of models (repeatable): `<name>.onnx` with inputs in
    /// `refs/<name>/sample_0.json` or `<name>.ref0.json`. Default: the
    /// repository's examples/models and examples/bench, found from the
    /// current directory upwards or from $VERITY_EXAMPLES (the examples folder).
    #[arg(long = "models", value_name = "DIR")]
    pub models: Vec<PathBuf>,
    /// Most timed runs per model and engine.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Stop timing a model on an engine after this many seconds (at least one run).
    #[arg(long, default_value_t = 5.0)]
    pub max_seconds: f64,
    /// Python interpreter that has onnxruntime and numpy.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// Time tract only; do not run onnxruntime.
    #[arg(long)]
    pub no_ort: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One model to time and the file holding its input.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    model: PathBuf,
    inputs: PathBuf,
}

/// Latency summary of one model on one engine, in milliseconds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Stats {
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    runs: usize,
}

/// What `ort_bench.py` printed.
#[derive(Debug, PartialEq)]
enum OrtOutput {
    Report(OrtReport),
    Missing { module: String, detail: String },
}

#[derive(Debug, PartialEq)]
struct OrtReport {
    /// onnxruntime, python and numpy versions.
    versions: [String; 3],
    results: Vec<(String, Result<Stats, String>)>,
}

/// Runs the benchmark and prints a table (or JSON with `--json`).
pub fn run_engine_bench(args: &BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 || !(args.max_seconds > 0.0) {
        bail!("--runs and --max-seconds must be positive");
    }
    let dirs = if args.models.is_empty() {
        default_model_dirs()?
    } else {
        args.models.clone()
    };
    let cases = discover(&dirs)?;
    let max_total = Duration::from_secs_f64(args.max_seconds);
    let engine = TractEngine::default();
    let mut tract = Vec::new();
    for c in &cases {
        if !args.json {
            eprintln!("tract: {}", c.name);
        }
        tract.push(time_tract(&engine, c, args.runs, max_total).map_err(|e| format!("{e:#}")));
    }
    let ort = if args.no_ort {
        Err("skipped (--no-ort)".to_string())
    } else {
        if !args.json {
            eprintln!("onnxruntime: {} models", cases.len());
        }
        run_ort(args, &cases)
    };
    let ort_of = |name: &str| -> Option<&Result<Stats, String>> {
        let rep = ort.as_ref().ok()?;
        rep.results.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    };
    let (cpu, cores) = machine();
    if args.json {
        let stats = |r: Option<&Result<Stats, String>>| match r {
            Some(Ok(s)) => json!({"median_ms": s.median_ms, "p10_ms": s.p10_ms,
                                  "p90_ms": s.p90_ms, "runs": s.runs}),
            Some(Err(e)) => json!({ "error": e }),
            None => Value::Null,
        };
        let models: Vec<Value> = cases
            .iter()
            .zip(&tract)
            .map(|(c, t)| {
                let o = ort_of(&c.name);
                json!({"name": c.name, "input": t.as_ref().map(|t| t.1.clone()).ok(),
                   "tract": stats(Some(&t.as_ref().map(|t| t.0.clone()).map_err(Clone::clone))),
                   "onnxruntime": stats(o), "ratio": ratio(t, o)})
            })
            .collect();
        let doc = json!({
            "date": utc_now(), "machine": {"cpu": cpu, "logical_cores": cores},
            "settings": {"runs": args.runs, "warmup": WARMUP_RUNS, "max_seconds": args.max_seconds,
                         "threads": 1, "optimized_build": !cfg!(debug_assertions)},
            "onnxruntime": match &ort {
                Ok(OrtReport { versions: [o, p, n], .. }) => json!({"version": o, "python": p, "numpy": n}),
                Err(e) => json!({"error": e}),
            },
            "models": models,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("verity bench: tract (verity-engine) vs onnxruntime, one thread each");
    println!(
        "machine: {cpu} | {cores} logical cores | {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!("date: {}", utc_now());
    match &ort {
        Ok(OrtReport { versions: [o, p, n], .. }) => println!(
            "onnxruntime: {o} CPUExecutionProvider (intra_op=1, inter_op=1, sequential) via python {p}, numpy {n}"
        ),
        Err(e) => println!("onnxruntime: not measured: {e}"),
    }
    println!("runs: up to {} per model and engine (at most {} s), {WARMUP_RUNS} warm-up runs; times in ms, median [p10..p90]",
        args.runs, args.max_seconds);
    if cfg!(debug_assertions) {
        println!("note: this is a debug build; build with --release for meaningful tract times");
    }
    println!();
    let hdr = format!(
        "{:<24} {:<20} {:>9} {:>17} {:>9} {:>17} {:>9}",
        "model", "input", "tract", "[p10..p90]", "ort", "[p10..p90]", "tract/ort"
    );
    println!("{hdr}\n{}", "-".repeat(hdr.len()));
    let cell = |r: Option<&Result<Stats, String>>| match r {
        Some(Ok(s)) => (
            format!("{:.3}", s.median_ms),
            format!("{:.3}..{:.3}", s.p10_ms, s.p90_ms),
        ),
        Some(Err(_)) => ("error".into(), String::new()),
        None => ("-".into(), String::new()),
    };
    let mut notes = Vec::new();
    for (c, t) in cases.iter().zip(&tract) {
        let o = ort_of(&c.name);
        let ts = t.as_ref().map(|t| t.0.clone()).map_err(Clone::clone);
        let (tm, tr) = cell(Some(&ts));
        let (om, or) = cell(o);
        let r = ratio(t, o).map_or("-".into(), |r| format!("{r:.2}"));
        let input = t.as_ref().map_or("?", |t| t.1.as_str());
        println!(
            "{:<24} {:<20} {tm:>9} {tr:>17} {om:>9} {or:>17} {r:>9}",
            c.name, input
        );
        if let Err(e) = t {
            notes.push(format!("{}: tract: {e}", c.name));
        }
        if let Some(Err(e)) = o {
            notes.push(format!("{}: onnxruntime: {e}", c.name));
        }
    }
    if ort.is_ok() {
        notes.push(
            "ort times include the Python binding's per-call overhead (tens of microseconds)"
                .into(),
        );
    }
    for n in notes {
        println!("note: {n}");
    }
    Ok(())
}

/// tract median over onnxruntime median, when both were measured.
fn ratio(t: &Result<(Stats, String), String>, o: Option<&Result<Stats, String>>) -> Option<f64> {
    match (t, o) {
        (Ok((t, _)), Some(Ok(o))) if o.median_ms > 0.0 => Some(t.median_ms / o.median_ms),
        _ => None,
    }
}

/// examples/models and examples/bench of the repository.
fn default_model_dirs() -> anyhow::Result<Vec<PathBuf>> {
    let examples = if let Some(dir) = std::env::var_os("VERITY_EXAMPLES") {
        PathBuf::from(dir)
    } else {
        let cwd = std::env::current_dir()?;
        let build_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        cwd.ancestors()
            .map(|a| a.join("examples"))
            .find(|e| e.join("models").is_dir())
            .or_else(|| build_tree.join("models").is_dir().then_some(build_tree))
            .context("no examples/models folder found here or above; pass --models DIR or set VERITY_EXAMPLES")?
    };
    let dirs: Vec<PathBuf> = ["models", "bench"]
        .iter()
        .map(|d| examples.join(d))
        .filter(|d| d.is_dir())
        .collect();
    if dirs.is_empty() {
        bail!("{} has neither models/ nor bench/", examples.display());
    }
    Ok(dirs)
}

/// The `*.onnx` files of `dirs` that have an input file, sorted by name per folder.
fn discover(dirs: &[PathBuf]) -> anyhow::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for dir in dirs {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        let mut models: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
            .collect();
        models.sort();
        for model in models {
            let Some(name) = model
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_owned)
            else {
                continue;
            };
            let candidates = [
                dir.join("refs").join(&name).join("sample_0.json"),
                dir.join(format!("{name}.ref0.json")),
            ];
            match candidates.into_iter().find(|p| p.is_file()) {
                Some(inputs) => cases.push(Case {
                    name,
                    model,
                    inputs,
                }),
                None => eprintln!(
                    "skipping {}: no refs/{name}/sample_0.json or {name}.ref0.json",
                    model.display()
                ),
            }
        }
    }
    if cases.is_empty() {
        bail!("no models with inputs found in {dirs:?}");
    }
    Ok(cases)
}

/// Loads the inputs of a reference file: its `inputs` member, or the whole object.
fn load_inputs(path: &Path) -> anyhow::Result<Tensors> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let inputs = doc.get("inputs").unwrap_or(&doc);
    Tensors::from_json(inputs).with_context(|| format!("inputs of {}", path.display()))
}

/// Times `case` on tract; returns the stats and the input shapes as text.
fn time_tract(
    engine: &TractEngine,
    case: &Case,
    runs: usize,
    max_total: Duration,
) -> anyhow::Result<(Stats, String)> {
    let onnx =
        std::fs::read(&case.model).with_context(|| format!("reading {}", case.model.display()))?;
    let input = load_inputs(&case.inputs)?;
    let key = verity_primitives::codec::sha256(&onnx);
    let prepared = engine.prepare(&key, &onnx, &input)?;
    // time_runs does one untimed run itself.
    for _ in 1..WARMUP_RUNS {
        prepared.run(&input, None)?;
    }
    let t = prepared.time_runs(&input, runs, max_total)?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let stats = Stats {
        median_ms: ms(t.median()),
        p10_ms: ms(t.percentile(10.0)),
        p90_ms: ms(t.percentile(90.0)),
        runs: t.samples.len(),
    };
    let shapes: Vec<String> = input
        .0
        .iter()
        .map(|(n, t)| format!("{n}{:?}", t.shape).replace(' ', ""))
        .collect();
    Ok((stats, shapes.join(" ")))
}

/// Runs the onnxruntime script on every case; `Err` says why nothing was measured.
fn run_ort(args: &BenchArgs, cases: &[Case]) -> Result<OrtReport, String> {
    let mut cmd = Command::new(&args.python);
    cmd.arg("-c").arg(ORT_SCRIPT);
    cmd.args([
        "--runs",
        &args.runs.to_string(),
        "--warmup",
        &WARMUP_RUNS.to_string(),
    ]);
    cmd.args(["--max-seconds", &args.max_seconds.to_string()]);
    for c in cases {
        cmd.arg("--model").arg(&c.name).arg(&c.model).arg(&c.inputs);
    }
    let out = cmd.output().map_err(|e| {
        format!("cannot run `{}` ({e}); install Python 3 and then `{INSTALL_HINT}`, or pass --python PATH", args.python.display())
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match parse_ort_output(&stdout) {
        Ok(OrtOutput::Report(r)) if out.status.success() => Ok(r),
        Ok(OrtOutput::Missing { module, detail }) if out.status.code() == Some(ORT_MISSING_EXIT) => Err(format!(
            "the Python module `{module}` is not installed for `{}` ({detail}); install it with `{INSTALL_HINT}`",
            args.python.display()
        )),
        res => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            let why = res.err().map_or(String::new(), |e| format!(": {e:#}"));
            Err(format!("ort_bench.py failed ({}){why}\n{}", out.status, tail.join("\n")))
        }
    }
}

/// Parses the JSON object `ort_bench.py` prints (its last non-empty line).
fn parse_ort_output(stdout: &str) -> anyhow::Result<OrtOutput> {
    #[derive(Deserialize)]
    struct Entry {
        name: String,
        error: Option<String>,
        #[serde(flatten)]
        rest: serde_json::Map<String, Value>,
    }
    #[derive(Deserialize)]
    struct Doc {
        onnxruntime: String,
        numpy: String,
        python: String,
        models: Vec<Entry>,
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("ort_bench.py printed nothing")?;
    let v: Value = serde_json::from_str(line).context("ort_bench.py output is not JSON")?;
    if let Some(module) = v.get("missing").and_then(Value::as_str) {
        let detail = v.get("detail").and_then(Value::as_str).unwrap_or_default();
        return Ok(OrtOutput::Missing {
            module: module.into(),
            detail: detail.into(),
        });
    }
    let doc: Doc = serde_json::from_value(v).context("unexpected ort_bench.py output")?;
    let results = doc
        .models
        .into_iter()
        .map(|e| {
            let r = match e.error {
                Some(err) => Ok(Err(err)),
                None => serde_json::from_value::<Stats>(Value::Object(e.rest))
                    .with_context(|| format!("timings of `{}`", e.name))
                    .map(Ok),
            };
            r.map(|r| (e.name, r))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(OrtOutput::Report(OrtReport {
        versions: [doc.onnxruntime, doc.python, doc.numpy],
        results,
    }))
}

/// CPU model from /proc/cpuinfo and the number of logical cores.
fn machine() -> (String, usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpu, cores)
}

/// The current UTC date and time, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        s / 3600,
        s % 3600 / 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"onnxruntime": "1.32.0", "numpy": "2.4.6", "python": "3.11.7", "models": [{"name": "sk_iris_logreg", "median_ms": 0.038017, "p10_ms": 0.037375, "p90_ms": 0.042183, "runs": 50}, {"name": "bad", "error": "NoSuchFile: nope.onnx"}]}"#;

    #[test]
    fn parses_script_output() {
        let out = parse_ort_output(&format!("some warning\n{SAMPLE}\n")).unwrap();
        let OrtOutput::Report(r) = out else {
            panic!("not a report: {out:?}")
        };
        assert_eq!(r.versions, ["1.32.0", "3.11.7", "2.4.6"].map(String::from));
        let want = Stats {
            median_ms: 0.038017,
            p10_ms: 0.037375,
            p90_ms: 0.042183,
            runs: 50,
        };
        assert_eq!(r.results[0], ("sk_iris_logreg".to_string(), Ok(want)));
        assert_eq!(
            r.results[1],
            ("bad".to_string(), Err("NoSuchFile: nope.onnx".to_string()))
        );
    }

    #[test]
    fn parses_missing_module() {
        let out = parse_ort_output(
            r#"{"missing": "onnxruntime", "detail": "No module named 'onnxruntime'"}"#,
        )
        .unwrap();
        let want = OrtOutput::Missing {
            module: "onnxruntime".into(),
            detail: "No module named 'onnxruntime'".into(),
        };
        assert_eq!(out, want);
    }

    #[test]
    fn rejects_malformed_output() {
        assert!(parse_ort_output("").is_err());
        assert!(parse_ort_output("Traceback (most recent call last):").is_err());
        assert!(parse_ort_output(r#"{"numpy": "2.4.6", "models": []}"#).is_err());
        let no_runs = SAMPLE.replace(r#", "runs": 50"#, "");
        assert!(parse_ort_output(&no_runs).is_err());
        let bad_median = SAMPLE.replace("0.038017", r#""fast""#);
        assert!(parse_ort_output(&bad_median).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    /// The whole benchmark on the repository's examples (slow; needs the
    /// examples, and onnxruntime for the second column).
    #[test]
    #[ignore]
    fn bench_examples() {
        let args = BenchArgs {
            models: Vec::new(),
            runs: 20,
            max_seconds: 0.5,
            python: "python3".into(),
            no_ort: false,
            json: false,
        };
        run_engine_bench(&args).unwrap();
    }
}
