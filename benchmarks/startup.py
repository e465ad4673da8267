"""How fast the command line answers when it has no model to load: `--help`, a config that does not exist, an
unknown student, a dataset that is not there. Each in a fresh interpreter, as a user types it.

    python benchmarks/startup.py            # writes benchmarks/results/startup.json and .md

Wall time (median and max of REPEATS) and the CPU time the child used: on a busy machine the wall time also holds
the wait for a core, the CPU time does not. The target (issue "Ship the winner") is under 1 s of wall time.
"""
from __future__ import annotations

import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPEATS = 5
RESULTS = Path(__file__).resolve().parent / "results"
CASES = {
    "--help": ["--help"],
    "config not found": ["run", "no-such-config"],
    "unknown student": ["run", "quickstart", "--set", "students.include=['nope']"],
    "dataset not found": ["run", "jigsaw-toxic", "--set", "data.path='no/such/dataset'"],
    "predict: input not found": ["predict", "runs/quickstart", "--input", "no-such-file.csv"],
}


def measure(argv: list[str]) -> dict:
    walls, cpus = [], []
    for _ in range(REPEATS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "bertdistill.cli", *argv], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"exit_status": done.returncode, "answer": (done.stderr or done.stdout).strip().splitlines()[-1][:160],
            "wall_median_s": statistics.median(walls), "wall_max_s": max(walls),
            "cpu_median_s": statistics.median(cpus)}


def main() -> None:
    rows = {name: measure(argv) for name, argv in CASES.items()}
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor()
              or platform.machine(), "python": platform.python_version(), "repeats": REPEATS,
              "command": "python benchmarks/startup.py", "cases": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    lines = [f"# Command-line start-up ({record['date']}, {record['machine']}, Python {record['python']})", "",
             f"`{record['command']}`: each case {REPEATS} times in a fresh interpreter.", "",
             "| case | exit | wall p50 | wall max | CPU p50 | answer |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['exit_status']} | {r['wall_median_s']:.2f} s | {r['wall_max_s']:.2f} s | "
              f"{r['cpu_median_s']:.2f} s | {r['answer'].replace('|', '/')} |" for name, r in rows.items()]
    (RESULTS / "startup.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
