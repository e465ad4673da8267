"""Cold start and memory of exported bundles against the same models loaded through bertdistill.

    python benchmarks/export_cold_start.py runs/bench/tweeteval-emotion [--repeats 3]

Every trained student and built ensemble of the run is exported (`bertdistill export`, to a temporary folder).
Then, each in a fresh interpreter, one text goes through the model and the child reports: the time from its first
line to the end of the first prediction (cold start = import + load + first prediction), the single-text p50 over
the test texts the evaluation times (`eval.latency_texts` of them, the same draw, after `eval.warmup` of them: warm,
comparable with the leaderboard's p50; threads pinned to 1 through the environment), and its peak resident memory
(VmHWM of /proc/self/status: `ru_maxrss` would also count the memory of this script, which the child was forked
from, since Linux carries it across exec). Once through the bundle's own bundle.py (numpy, onnxruntime, tokenizers),
once through bertdistill in-process (`students.load_student`; an ensemble: `Ensemble.load` with its members loaded
that way). The median of --repeats runs of each. Interpreter start-up itself is left out of both. Writes
benchmarks/results/export-<run>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEXT = "@user honestly the best news I have heard all week, so happy for you both! #blessed"
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}

# Each child prints one JSON line: seconds to import, load and first prediction, warm p50, peak RSS in MiB.
TIMING = """
imported = time.perf_counter()
model = load()
loaded = time.perf_counter()
model.predict_proba([TEXT])
first = time.perf_counter()
timed = json.loads(open(TIMED, encoding="utf-8").read())
for text in timed["texts"][:timed["warmup"]]:
    model.predict_proba([text])
warm = []
for text in timed["texts"]:
    started = time.perf_counter()
    model.predict_proba([text])
    warm.append(time.perf_counter() - started)
try:  # VmHWM: this interpreter's own peak; on Linux ru_maxrss also counts the process it was forked from
    peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
except OSError:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported, "first_prediction_s": first - loaded,
                  "cold_start_s": first - start, "warm_ms": sorted(warm)[len(warm) // 2] * 1e3,
                  "peak_rss_mib": peak_kib / 1024}))
"""
BUNDLE_CHILD = """
import time
start = time.perf_counter()
import importlib.util, json, resource, sys
folder, TEXT, TIMED = sys.argv[1], sys.argv[2], sys.argv[3]
spec = importlib.util.spec_from_file_location("bundle", folder + "/bundle.py")
bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bundle)
load = lambda: bundle.load(folder)
""" + TIMING
BERTDISTILL_CHILD = """
import time
start = time.perf_counter()
import json, resource, sys
from pathlib import Path
from bertdistill.students import load_student
run_dir, name, TEXT, TIMED = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def load():
    if (run_dir / "students" / name / "bertdistill.json").exists():
        return load_student(run_dir / "students" / name)
    from bertdistill.ensembles.ensemble import Ensemble, read_header
    members = [m["name"] for m in read_header(run_dir / "ensembles" / name)["members"]]
    return Ensemble.load(run_dir / "ensembles" / name, {m: load_student(run_dir / "students" / m) for m in members})
""" + TIMING


def child(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-I", "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=tempfile.gettempdir(), env={**os.environ, **ONE_THREAD})
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def measure(run_dir: Path, repeats: int) -> list[dict]:
    from bertdistill import pipeline
    from bertdistill.config import config_from_dict
    from bertdistill.core import files
    from bertdistill.evaluation.latency import benchmark_texts
    from bertdistill.ship.export import export_bundle, exportable

    run = pipeline.Run(config_from_dict(files.read_json(run_dir / "config.json")), run_dir)
    names = exportable(run)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        timed = Path(tmp) / "timed.json"  # the evaluation's own draw of test texts
        files.write_json(timed, {"texts": benchmark_texts(run.dataset.test.texts, run.config.eval.latency_texts),
                                 "warmup": run.config.eval.warmup})
        for name in names["students"] + names["ensembles"]:
            bundle = export_bundle(run_dir, name, Path(tmp) / name)
            kind = files.read_json(bundle / "bundle.json")["model"]
            bundle_runs = [child(BUNDLE_CHILD, str(bundle), TEXT, str(timed)) for _ in range(repeats)]
            bertdistill_runs = [child(BERTDISTILL_CHILD, str(run_dir), name, TEXT, str(timed))
                                for _ in range(repeats)]
            rows.append({"model": name, "bundle_kind": kind, "bundle_bytes": files.dir_size(bundle),
                         "bundle": median_of(bundle_runs), "bertdistill": median_of(bertdistill_runs),
                         "runs": {"bundle": bundle_runs, "bertdistill": bertdistill_runs}})
            print(f"{name}: cold start {rows[-1]['bundle']['cold_start_s']:.3f} s bundle, "
                  f"{rows[-1]['bertdistill']['cold_start_s']:.3f} s bertdistill", flush=True)
    return rows


def environment() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")), "") if cpuinfo.exists() else platform.processor()
    import numpy
    import onnxruntime
    import tokenizers

    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": platform.machine(),
            "cpu": cpu, "cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "numpy": numpy.__version__,
            "onnxruntime": onnxruntime.__version__, "tokenizers": tokenizers.__version__}


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [f"# Exported bundles: cold start and memory, `{result['run']}`", "",
             f"Measured {env['date']} on {env['cpu']} ({env['cores']} cores, {env['machine']}; load average "
             f"before: {', '.join(map(str, env['load_average_before']))}), Python {env['python']}, onnxruntime "
             f"{env['onnxruntime']}, tokenizers {env['tokenizers']}, numpy {env['numpy']}. Command: "
             f"`{result['command']}`.", "",
             f"Each number is the median of {result['repeats']} fresh interpreters. Cold start = import + load + "
             "first prediction of one tweet (interpreter start-up left out); warm = single-text p50 over the "
             "evaluation's test texts at 1 thread; peak RSS = the child's VmHWM (its own peak resident memory).", "",
             "| model | bundle | size MB | cold start, bundle | cold start, bertdistill | peak RSS, bundle | "
             "peak RSS, bertdistill | warm, bundle | warm, bertdistill |", "|---|---|---|---|---|---|---|---|---|"]
    for row in result["models"]:
        bundle, inproc = row["bundle"], row["bertdistill"]
        lines.append(f"| {row['model']} | {row['bundle_kind']} | {row['bundle_bytes'] / 1e6:.1f} | "
                     f"{bundle['cold_start_s'] * 1e3:.0f} ms | {inproc['cold_start_s'] * 1e3:.0f} ms | "
                     f"{bundle['peak_rss_mib']:.0f} MiB | {inproc['peak_rss_mib']:.0f} MiB | "
                     f"{bundle['warm_ms']:.3f} ms | {inproc['warm_ms']:.3f} ms |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory with trained students (and ensembles)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh interpreters per model and way (median)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the .json and .md")
    args = parser.parse_args(argv)
    command = " ".join(["python", "benchmarks/export_cold_start.py", *(sys.argv[1:] if argv is None else argv)])
    result = {"run": args.run_dir.name, "command": command,
              "repeats": args.repeats, "environment": environment()}
    result["models"] = measure(args.run_dir.resolve(), args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"export-{args.run_dir.name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / f"export-{args.run_dir.name}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
