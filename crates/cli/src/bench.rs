//! `verity bench`: single-threaded latency of the example models on tract
//! (verity-engine, in-process; tract's default executor is single-threaded)
//! next to onnxruntime (`scripts/ort_bench.py`, embedded in the binary and run
//! with `--python`; one thread, sequential execution), in the same run, on the
//! same input files, with the same warm-up and run budget.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use verity_engine::{Tensors, TractEngine};

/// The onnxruntime side of the benchmark.
const ORT_SCRIPT: &str = include_str!("../../../scripts/ort_bench.py");
/// Exit status of the script when numpy or onnxruntime is missing.
const ORT_MISSING_EXIT: i32 = 3;
const INSTALL_HINT: &str = "pip install -r scripts/requirements-bench.txt";
/// Untimed runs before timing, on both engines.
const WARMUP_RUNS: usize = 5;

/// Single-threaded latency of the example models on tract and onnxruntime.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Folder of `<name>.onnx` models, inputs in `refs/<name>/sample_0.json` or
    /// `<name>.ref0.json` (repeatable). Default: examples/models and examples/bench
    /// in $VERITY_EXAMPLES, or found from the current directory upwards.
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

/// One model to time (`onnx`) and the file holding its input (`refs`).
#[derive(Debug)]
struct Case {
    name: String,
    onnx: PathBuf,
    refs: PathBuf,
}

/// Latency summary of one model on one engine, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Stats {
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    runs: usize,
}

/// The outcome of timing one model on one engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Measured {
    Ok(Stats),
    Failed { error: String },
}

impl Measured {
    fn failed(error: impl Into<String>) -> Self {
        Self::Failed {
            error: error.into(),
        }
    }
}

/// What `ort_bench.py` prints: one JSON object on its last line.
#[derive(Debug, PartialEq, Deserialize)]
struct OrtReport {
    onnxruntime: String,
    python: String,
    numpy: String,
    models: Vec<OrtEntry>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct OrtEntry {
    name: String,
    #[serde(flatten)]
    result: Measured,
}

/// One model's results (also its `--json` form).
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    /// Input names and shapes, `X[1,4]`.
    input: String,
    tract: Measured,
    /// `None` when onnxruntime was not run.
    onnxruntime: Option<Measured>,
    /// tract median over onnxruntime median.
    ratio: Option<f64>,
}

/// Runs the benchmark and prints a table (or JSON with `--json`).
pub fn run_engine_bench(args: &BenchArgs) -> Result<()> {
    if args.runs == 0 || !(0.001..=1e6).contains(&args.max_seconds) {
        bail!("--runs must be positive and --max-seconds between 0.001 and 1e6");
    }
    let dirs = match args.models.is_empty() {
        true => default_model_dirs()?,
        false => args.models.clone(),
    };
    let cases = discover(&dirs)?;
    let engine = TractEngine::default();
    let mut tract = Vec::new();
    for c in &cases {
        eprintln!("tract: {}", c.name);
        tract.push(time_tract(&engine, c, args));
    }
    let ort = match args.no_ort {
        true => Err("skipped (--no-ort)".to_string()),
        false => run_ort(args, &cases),
    };
    let mut rows = Vec::new();
    for (c, t) in cases.iter().zip(tract) {
        let (tract, input) = match t {
            Ok(timed) => timed,
            Err(e) => (Measured::failed(format!("{e:#}")), "?".into()),
        };
        let onnxruntime = ort.as_ref().ok().map(|r| {
            let entry = r.models.iter().find(|e| e.name == c.name);
            entry.map_or_else(|| Measured::failed("missing"), |e| e.result.clone())
        });
        let ratio = match (&tract, &onnxruntime) {
            (Measured::Ok(t), Some(Measured::Ok(o))) => Some(t.median_ms / o.median_ms),
            _ => None,
        };
        let name = c.name.clone();
        rows.push(Row {
            name,
            input,
            tract,
            onnxruntime,
            ratio,
        });
    }
    let (cpu, cores) = machine();
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    if args.json {
        let doc = json!({
            "date": utc_now(),
            "machine": {"cpu": cpu, "logical_cores": cores, "os": os, "arch": arch},
            "settings": {"runs": args.runs, "warmup": WARMUP_RUNS, "max_seconds": args.max_seconds,
                         "threads": 1, "optimized_build": !cfg!(debug_assertions)},
            "onnxruntime": match &ort {
                Ok(r) => json!({"version": r.onnxruntime, "python": r.python, "numpy": r.numpy}),
                Err(e) => json!({ "error": e }),
            },
            "models": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("verity bench: tract (verity-engine) vs onnxruntime, one thread each");
    println!("machine: {cpu} | {cores} logical cores | {os} {arch}");
    println!("date: {}", utc_now());
    match &ort {
        Ok(r) => println!(
            "onnxruntime: {} CPUExecutionProvider (1 intra-op, 1 inter-op thread, sequential), \
             python {}, numpy {}",
            r.onnxruntime, r.python, r.numpy
        ),
        Err(e) => println!("onnxruntime: not measured: {e}"),
    }
    println!(
        "runs: up to {} per model and engine (at most {} s), {WARMUP_RUNS} warm-up; \
         ms, median [p10..p90]",
        args.runs, args.max_seconds
    );
    if cfg!(debug_assertions) {
        println!("note: this is a debug build; build with --release for meaningful tract times");
    }
    print_table(&rows, ort.is_ok());
    Ok(())
}

fn print_table(rows: &[Row], ort_ran: bool) {
    let hdr = format!(
        "{:<24} {:<20} {:>9} {:>17} {:>9} {:>17} {:>9}",
        "model", "input", "tract", "[p10..p90]", "ort", "[p10..p90]", "tract/ort"
    );
    println!("\n{hdr}\n{}", "-".repeat(hdr.len()));
    let mut notes = Vec::new();
    let mut cell = |name: &str, engine: &str, m: Option<&Measured>| match m {
        Some(Measured::Ok(s)) => {
            let range = format!("{:.4}..{:.4}", s.p10_ms, s.p90_ms);
            (format!("{:.4}", s.median_ms), range)
        }
        Some(Measured::Failed { error }) => {
            notes.push(format!("{name}: {engine}: {error}"));
            ("error".into(), String::new())
        }
        None => ("-".into(), String::new()),
    };
    for r in rows {
        let (tm, tr) = cell(&r.name, "tract", Some(&r.tract));
        let (om, or) = cell(&r.name, "onnxruntime", r.onnxruntime.as_ref());
        let ratio = r.ratio.map_or("-".into(), |x| format!("{x:.2}"));
        let (name, input) = (&r.name, &r.input);
        println!("{name:<24} {input:<20} {tm:>9} {tr:>17} {om:>9} {or:>17} {ratio:>9}");
    }
    if ort_ran {
        notes.push("ort times include the Python binding's per-call overhead (a few us)".into());
    }
    for n in notes {
        println!("note: {n}");
    }
}

/// examples/models and examples/bench of the repository.
pub(crate) fn default_model_dirs() -> Result<Vec<PathBuf>> {
    let examples = match std::env::var_os("VERITY_EXAMPLES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let build_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
            let cwd = std::env::current_dir()?;
            cwd.ancestors()
                .map(|a| a.join("examples"))
                .chain([build_tree])
                .find(|e| e.join("models").is_dir())
                .context("no examples/models here or above; pass --models or set VERITY_EXAMPLES")?
        }
    };
    let dirs: Vec<PathBuf> = ["models", "bench"].map(|d| examples.join(d)).into();
    Ok(dirs.into_iter().filter(|d| d.is_dir()).collect())
}

/// The `*.onnx` files of `dirs` that have an input file, sorted by name per folder.
fn discover(dirs: &[PathBuf]) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).with_context(|| format!("reading {dir:?}"))?;
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.retain(|p| p.extension().is_some_and(|x| x == "onnx"));
        files.sort();
        for onnx in files {
            let Some(name) = onnx.file_stem().and_then(|s| s.to_str()).map(String::from) else {
                continue;
            };
            let sample = dir.join("refs").join(&name).join("sample_0.json");
            let refs = [sample, dir.join(format!("{name}.ref0.json"))];
            match refs.into_iter().find(|p| p.is_file()) {
                Some(refs) => cases.push(Case { name, onnx, refs }),
                None => {
                    eprintln!("skipping {onnx:?}: no refs/{name}/sample_0.json or {name}.ref0.json")
                }
            }
        }
    }
    if cases.is_empty() {
        bail!("no models with inputs found in {dirs:?}");
    }
    Ok(cases)
}

/// Times `case` on tract; returns the timings and the input shapes as text.
fn time_tract(engine: &TractEngine, case: &Case, args: &BenchArgs) -> Result<(Measured, String)> {
    let onnx = std::fs::read(&case.onnx).with_context(|| format!("reading {:?}", case.onnx))?;
    let path = &case.refs;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let doc: Value = serde_json::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
    // A reference file's `inputs` member, or a plain map of tensors.
    let input = Tensors::from_json(doc.get("inputs").unwrap_or(&doc))
        .with_context(|| format!("inputs in {path:?}"))?;
    let prepared = engine.prepare(&verity_primitives::codec::sha256(&onnx), &onnx, &input)?;
    for _ in 1..WARMUP_RUNS {
        prepared.run(&input, None)?; // time_runs does the last warm-up run itself
    }
    let t = prepared.time_runs(&input, args.runs, Duration::from_secs_f64(args.max_seconds))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let timed = Measured::Ok(Stats {
        median_ms: ms(t.median()),
        p10_ms: ms(t.percentile(10.0)),
        p90_ms: ms(t.percentile(90.0)),
        runs: t.samples.len(),
    });
    let mut shapes = Vec::new();
    for (name, t) in &input.0 {
        shapes.push(format!("{name}{:?}", t.shape).replace(' ', ""));
    }
    Ok((timed, shapes.join(" ")))
}

/// Runs the onnxruntime script on every case; `Err` says why nothing was measured.
fn run_ort(args: &BenchArgs, cases: &[Case]) -> std::result::Result<OrtReport, String> {
    eprintln!("onnxruntime: {} models", cases.len());
    let mut cmd = Command::new(&args.python);
    cmd.arg("-c").arg(ORT_SCRIPT);
    cmd.arg("--runs").arg(args.runs.to_string());
    cmd.arg("--warmup").arg(WARMUP_RUNS.to_string());
    cmd.arg("--max-seconds").arg(args.max_seconds.to_string());
    for c in cases {
        cmd.arg("--model").arg(&c.name).arg(&c.onnx).arg(&c.refs);
    }
    let python = args.python.display();
    let out = cmd.output().map_err(|e| {
        format!("cannot run `{python}` ({e}); install Python 3, then `{INSTALL_HINT}`")
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    if out.status.code() == Some(ORT_MISSING_EXIT) {
        return Err(format!(
            "{last} for `{python}`; install with `{INSTALL_HINT}`"
        ));
    }
    let res = parse_ort_output(&String::from_utf8_lossy(&out.stdout));
    match res {
        Ok(r) if out.status.success() => Ok(r),
        _ => {
            let why = res.err().map_or(String::new(), |e| format!(": {e:#}"));
            let status = out.status;
            Err(format!(
                "ort_bench.py failed ({status}){why}; stderr:\n{}",
                stderr.trim_end()
            ))
        }
    }
}

/// Parses what `ort_bench.py` printed (the JSON object on its last non-empty line).
fn parse_ort_output(stdout: &str) -> Result<OrtReport> {
    let mut lines = stdout.lines().rev().filter(|l| !l.trim().is_empty());
    let line = lines.next().context("ort_bench.py printed nothing")?;
    serde_json::from_str(line).context("unexpected output from ort_bench.py")
}

/// CPU model from /proc/cpuinfo and the number of logical cores.
fn machine() -> (String, usize) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| Some(l.strip_prefix("model name")?.split_once(':')?.1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (model.unwrap_or("unknown cpu").trim().to_string(), cores)
}

/// The current UTC date and time, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    let secs = now.map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let (hh, mm) = (secs % 86_400 / 3600, secs % 3600 / 60);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
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

    const SAMPLE: &str = r#"{"onnxruntime": "1.32.0", "numpy": "2.4.6", "python": "3.11.7",
        "models": [{"name": "sk_iris_logreg", "median_ms": 0.038017, "p10_ms": 0.037375,
                    "p90_ms": 0.042183, "runs": 50},
                   {"name": "bad", "error": "NoSuchFile: nope.onnx"}]}"#;

    #[test]
    fn parses_script_output() {
        let out = format!("some warning\n{}\n\n", SAMPLE.replace('\n', ""));
        let r = parse_ort_output(&out).unwrap();
        let versions = [&r.onnxruntime, &r.python, &r.numpy];
        assert_eq!(versions, ["1.32.0", "3.11.7", "2.4.6"]);
        let stats = Stats {
            median_ms: 0.038017,
            p10_ms: 0.037375,
            p90_ms: 0.042183,
            runs: 50,
        };
        let got: Vec<_> = r.models.iter().map(|e| (&*e.name, &e.result)).collect();
        let failed = Measured::failed("NoSuchFile: nope.onnx");
        assert_eq!(
            got,
            [("sk_iris_logreg", &Measured::Ok(stats)), ("bad", &failed)]
        );
    }

    #[test]
    fn rejects_malformed_output() {
        let one_line = SAMPLE.replace('\n', "");
        assert!(parse_ort_output("").is_err());
        assert!(parse_ort_output("Traceback (most recent call last):").is_err());
        assert!(parse_ort_output(r#"{"numpy": "2.4.6", "models": []}"#).is_err());
        assert!(parse_ort_output(&one_line.replace(r#", "runs": 50"#, "")).is_err());
        assert!(parse_ort_output(&one_line.replace("0.038017", r#""fast""#)).is_err());
        assert!(parse_ort_output(&one_line.replace("}]}", "}]")).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    /// The whole benchmark on the repository's examples (slow; the ort
    /// column needs `pip install -r scripts/requirements-bench.txt`).
    #[test]
    #[ignore]
    fn bench_examples() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let argv = ["bench", "--runs", "20", "--max-seconds", "0.5"];
        run_engine_bench(&<Cli as clap::Parser>::parse_from(argv).bench).unwrap();
    }
}
