"""Small models of architectures the example models lack (a transformer
block with causal attention, LSTM, GRU, ConvTranspose, Resize nearest and
linear, LogSoftmax), with onnxruntime 1.32.0 outputs, for
crates/engine/tests/exact_coverage.rs.

    pip install numpy==2.4.6 onnx==1.23.2 onnxruntime==1.32.0
    python3 crates/engine/tests/exact_data/coverage/make_coverage_models.py
"""
import os
import numpy as np, onnx, json
OUT = os.path.dirname(os.path.abspath(__file__))
from onnx import helper as h, TensorProto as T, numpy_helper as nh
import onnxruntime as ort
rng = np.random.default_rng(0)
def save(name, nodes, inputs, outputs, inits, feeds, opset=17):
    g = h.make_graph(nodes, name, inputs, outputs, [nh.from_array(v.astype(np.float32) if v.dtype.kind=='f' else v, k) for k, v in inits.items()])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)]); m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, f"{OUT}/{name}.onnx")
    s = ort.InferenceSession(f"{OUT}/{name}.onnx", providers=["CPUExecutionProvider"])
    outs = s.run(None, feeds)
    ref = {"inputs": {k: {"shape": list(v.shape), "dtype": "float32", "data": v.ravel().tolist()} for k, v in feeds.items()},
           "outputs": {o.name: {"shape": list(r.shape), "dtype": str(r.dtype), "data": r.ravel().tolist()} for o, r in zip(s.get_outputs(), outs)}}
    json.dump(ref, open(f"{OUT}/{name}.json", "w"))
f = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)
# transformer block: layernorm + attention + gelu MLP
D, S, H = 16, 6, 2
x = f(1, S, D)
inits = {"Wq": f(D, D), "Wk": f(D, D), "Wv": f(D, D), "Wo": f(D, D), "g": 1 + f(D), "b": f(D), "W1": f(D, 4 * D), "W2": f(4 * D, D),
         "shape": np.array([1, S, H, D // H], np.int64), "back": np.array([1, S, D], np.int64), "scale": np.array(1 / np.sqrt(D // H), np.float32),
         "mask": np.triu(np.full((S, S), -1e9, np.float32), 1), "half": np.array(0.5, np.float32), "one": np.array(1.0, np.float32), "rs2": np.array(1 / np.sqrt(2), np.float32)}
nodes = [h.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-5)]
for n in "qkv":
    nodes += [h.make_node("MatMul", ["ln", "W" + n], [n + "0"]), h.make_node("Reshape", [n + "0", "shape"], [n + "1"]),
              h.make_node("Transpose", [n + "1"], [n], perm=[0, 2, 1, 3])]
nodes += [h.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), h.make_node("MatMul", ["q", "kt"], ["s0"]), h.make_node("Mul", ["s0", "scale"], ["s1"]),
          h.make_node("Add", ["s1", "mask"], ["s2"]), h.make_node("Softmax", ["s2"], ["p"], axis=-1), h.make_node("MatMul", ["p", "v"], ["o0"]),
          h.make_node("Transpose", ["o0"], ["o1"], perm=[0, 2, 1, 3]), h.make_node("Reshape", ["o1", "back"], ["o2"]), h.make_node("MatMul", ["o2", "Wo"], ["o3"]),
          h.make_node("Add", ["x", "o3"], ["r1"]), h.make_node("MatMul", ["r1", "W1"], ["m1"]), h.make_node("Mul", ["m1", "rs2"], ["m2"]), h.make_node("Erf", ["m2"], ["m3"]),
          h.make_node("Add", ["m3", "one"], ["m4"]), h.make_node("Mul", ["m1", "m4"], ["m5"]), h.make_node("Mul", ["m5", "half"], ["m6"]), h.make_node("MatMul", ["m6", "W2"], ["m7"]),
          h.make_node("Add", ["r1", "m7"], ["y"])]
save("xformer", nodes, [h.make_tensor_value_info("x", T.FLOAT, [1, S, D])], [h.make_tensor_value_info("y", T.FLOAT, [1, S, D])], inits, {"x": x})
# LSTM and GRU
Hh, I, L = 8, 5, 7
x = f(L, 1, I)
save("lstm", [h.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Yh"], hidden_size=Hh)], [h.make_tensor_value_info("x", T.FLOAT, [L, 1, I])],
     [h.make_tensor_value_info("Y", T.FLOAT, [L, 1, 1, Hh])], {"W": f(1, 4 * Hh, I), "R": f(1, 4 * Hh, Hh), "B": f(1, 8 * Hh)}, {"x": x})
save("gru", [h.make_node("GRU", ["x", "W", "R", "B"], ["Y", "Yh"], hidden_size=Hh)], [h.make_tensor_value_info("x", T.FLOAT, [L, 1, I])],
     [h.make_tensor_value_info("Y", T.FLOAT, [L, 1, 1, Hh])], {"W": f(1, 3 * Hh, I), "R": f(1, 3 * Hh, Hh), "B": f(1, 6 * Hh)}, {"x": x})
# ConvTranspose, Resize
x = f(1, 3, 5, 5)
save("deconv", [h.make_node("ConvTranspose", ["x", "W", "B"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])],
     [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 5, 5])], [h.make_tensor_value_info("y", T.FLOAT, [1, 4, 10, 10])], {"W": f(3, 4, 3, 3), "B": f(4)}, {"x": x})
save("resize", [h.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")], [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 5, 5])],
     [h.make_tensor_value_info("y", T.FLOAT, [1, 3, 10, 10])], {"scales": np.array([1, 1, 2, 2], np.float32)}, {"x": x})
save("resize_lin", [h.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")], [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 5, 5])],
     [h.make_tensor_value_info("y", T.FLOAT, [1, 3, 10, 10])], {"scales": np.array([1, 1, 2, 2], np.float32)}, {"x": x})
save("logsoftmax", [h.make_node("LogSoftmax", ["x"], ["y"], axis=-1)], [h.make_tensor_value_info("x", T.FLOAT, [2, 5])],
     [h.make_tensor_value_info("y", T.FLOAT, [2, 5])], {}, {"x": f(2, 5)})
# Activations and normalizations, one node each.
rng = np.random.default_rng(1)
def save_act(name, node, extra_inits=None, opset=17, shape=(2, 6)):
    inits = [nh.from_array(v, k) for k, v in (extra_inits or {}).items()]
    g = h.make_graph([node], name, [h.make_tensor_value_info("x", T.FLOAT, list(shape))], [h.make_tensor_value_info("y", T.FLOAT, ["d%d" % i for i in range(len(shape))])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)]); m.ir_version = 8
    onnx.save(m, f"{OUT}/a_{name}.onnx")
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    s = ort.InferenceSession(f"{OUT}/a_{name}.onnx", providers=["CPUExecutionProvider"])
    y = s.run(None, {"x": x})[0]
    json.dump({"inputs": {"x": {"shape": list(x.shape), "dtype": "float32", "data": x.ravel().tolist()}},
               "outputs": {"y": {"shape": list(y.shape), "dtype": "float32", "data": y.ravel().tolist()}}}, open(f"{OUT}/a_{name}.json", "w"))
save_act("elu", h.make_node("Elu", ["x"], ["y"], alpha=0.7))
save_act("selu", h.make_node("Selu", ["x"], ["y"]))
save_act("prelu", h.make_node("PRelu", ["x", "s"], ["y"]), {"s": np.linspace(0.1, 0.6, 6).astype(np.float32)})
save_act("softplus", h.make_node("Softplus", ["x"], ["y"]))
save_act("hardsigmoid", h.make_node("HardSigmoid", ["x"], ["y"]))
save_act("softsign", h.make_node("Softsign", ["x"], ["y"]))
save_act("thresholdedrelu", h.make_node("ThresholdedRelu", ["x"], ["y"], alpha=0.5))
save_act("mish", h.make_node("Mish", ["x"], ["y"]), opset=18)
save_act("gelu20", h.make_node("Gelu", ["x"], ["y"]), opset=20)
save_act("instnorm", h.make_node("InstanceNormalization", ["x", "sc", "b"], ["y"]), {"sc": np.ones(3, np.float32), "b": np.zeros(3, np.float32)}, shape=(1, 3, 4, 4))
save_act("reducel2", h.make_node("ReduceL2", ["x"], ["y"], axes=[1]), opset=13)
save_act("reducemax", h.make_node("ReduceMax", ["x"], ["y"], axes=[1]), opset=13)


print("ok")

