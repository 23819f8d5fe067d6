#!/usr/bin/env python3
"""Single-threaded onnxruntime latency of ONNX models, as JSON.

The onnxruntime side of `verity bench`, which runs this script with the same
inputs, warm-up and run count as its tract timings:

    python3 scripts/ort_bench.py --runs 200 --warmup 5 --max-seconds 5 \\
        --model sk_iris_logreg examples/models/sk_iris_logreg.onnx \\
                examples/models/refs/sk_iris_logreg/sample_0.json

INPUTS is a JSON file whose "inputs" member (or, without one, the whole
object) maps input names to {"shape", "dtype", "data"} tensors.

Sessions use intra_op_num_threads=1, inter_op_num_threads=1 and sequential
execution, default graph optimisations, CPUExecutionProvider. Inputs are
converted to OrtValues and bound once (IOBinding, the lowest-overhead Python
path: a few microseconds per call); each timed run is one `run_with_iobinding`
call, and outputs stay in onnxruntime's memory. After `--warmup` untimed runs,
up to `--runs` runs are timed, stopping once `--max-seconds` have been spent
(at least one timed run). Percentiles are nearest-rank:
sorted[round(p/100 * (n-1))], the same definition as verity-engine's
RunTimings.

Prints one JSON object on stdout:
    {"onnxruntime": "1.32.0", "numpy": "2.4.6", "python": "3.11.7",
     "models": [{"name": ..., "median_ms": ..., "p10_ms": ..., "p90_ms": ...,
                 "runs": n} or {"name": ..., "error": "..."}]}
If numpy or onnxruntime cannot be imported it says so on stderr (last line)
and exits with status 3. Install the pinned versions with:
    pip install -r scripts/requirements-bench.txt
"""
import argparse
import json
import math
import platform
import sys
import time

MISSING_EXIT = 3


def fail_missing(module, err):
    print(f"{module} is not installed ({err})", file=sys.stderr)
    sys.exit(MISSING_EXIT)


try:
    import numpy as np
except ImportError as e:
    fail_missing("numpy", e)
try:
    import onnxruntime as ort
except ImportError as e:
    fail_missing("onnxruntime", e)

DTYPES = {
    "float32": np.float32, "float64": np.float64, "float16": np.float16,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
    "uint8": np.uint8, "bool": np.bool_,
}


def number(x):
    """A plain number, or the {"value", "decimals"} fixed-point form."""
    if isinstance(x, dict):
        return x["value"] / 10 ** x["decimals"]
    return x


def load_inputs(path):
    with open(path) as f:
        doc = json.load(f)
    tensors = doc.get("inputs", doc)
    feeds = {}
    for name, t in tensors.items():
        dtype = DTYPES.get(t["dtype"])
        if dtype is None:
            raise ValueError(f"input {name!r}: unsupported dtype {t['dtype']!r}")
        data = [number(x) for x in t["data"]]
        feeds[name] = np.asarray(data, dtype=dtype).reshape(t["shape"])
    return feeds


def single_thread_session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def percentile(sorted_s, p):
    rank = math.floor(p / 100 * (len(sorted_s) - 1) + 0.5)
    return sorted_s[min(rank, len(sorted_s) - 1)]


def time_model(model, inputs, runs, warmup, max_seconds):
    sess = single_thread_session(model)
    binding = sess.io_binding()
    for name, value in load_inputs(inputs).items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value))
    for out in sess.get_outputs():
        binding.bind_output(out.name)
    for _ in range(warmup):
        sess.run_with_iobinding(binding)
    samples = []
    start = time.perf_counter_ns()
    budget = max_seconds * 1e9
    while len(samples) < max(runs, 1):
        t0 = time.perf_counter_ns()
        sess.run_with_iobinding(binding)
        samples.append(time.perf_counter_ns() - t0)
        if time.perf_counter_ns() - start >= budget:
            break
    samples.sort()
    return {
        "median_ms": percentile(samples, 50) / 1e6,
        "p10_ms": percentile(samples, 10) / 1e6,
        "p90_ms": percentile(samples, 90) / 1e6,
        "runs": len(samples),
    }


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=5.0)
    ap.add_argument("--model", nargs=3, action="append", default=[],
                    metavar=("NAME", "ONNX", "INPUTS"), help="a model to time (repeatable)")
    args = ap.parse_args()

    results = []
    for name, model, inputs in args.model:
        try:
            r = time_model(model, inputs, args.runs, args.warmup, args.max_seconds)
            results.append({"name": name, **r})
        except Exception as e:  # one bad model must not hide the others
            results.append({"name": name, "error": f"{type(e).__name__}: {e}"})
    print(json.dumps({
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "models": results,
    }))


if __name__ == "__main__":
    main()
