#!/usr/bin/env python3
"""Float onnxruntime outputs on whole data sets, for the exact-mode accuracy
test (crates/engine/tests/exact_accuracy.rs).

    pip install numpy==2.4.6 scikit-learn==1.9.1 onnxruntime==1.32.0
    python3 crates/engine/tests/exact_data/make_accuracy_refs.py

For each classifier of examples/models, every row of the scikit-learn data
set it was trained on (train and test splits together) is run through
onnxruntime 1.32.0 (CPU, one thread). Written per data set: the inputs once,
then per model the labels and the probabilities (float32, shortest repr).
"""
import json
import os

import numpy as np
import onnxruntime as ort
from sklearn import datasets

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "..", "..", "..", "examples", "models")

SETS = {
    "digits": (datasets.load_digits, [("sk_digits_mlp", None), ("np_digits_cnn", (1, 8, 8))]),
    "iris": (datasets.load_iris, [("sk_iris_logreg", None)]),
    "breast_cancer": (datasets.load_breast_cancer, [("sk_breast_cancer_rf", None)]),
    "wine": (datasets.load_wine, [("sk_wine_gb", None)]),
}


def f32s(a):
    return [float(str(v)) for v in np.asarray(a, dtype=np.float32).ravel()]


def main():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    for name, (load, models) in SETS.items():
        x = load().data.astype(np.float32)
        out = {"dataset": name, "rows": int(x.shape[0]), "features": int(x.shape[1]),
               "inputs": f32s(x), "models": {}}
        for model, shape in models:
            sess = ort.InferenceSession(os.path.join(MODELS, model + ".onnx"), opts,
                                        providers=["CPUExecutionProvider"])
            feed = x if shape is None else x.reshape((x.shape[0],) + shape)
            iname = sess.get_inputs()[0].name
            labels, probs = sess.run(None, {iname: feed})
            out["models"][model] = {
                "input": iname,
                "input_shape": list(feed.shape[1:]),
                "labels": [int(v) for v in labels],
                "probabilities": f32s(probs),
                "classes": int(probs.shape[1]),
            }
        with open(os.path.join(HERE, f"accuracy_{name}.json"), "w") as f:
            json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
