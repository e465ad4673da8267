"""Run `bertdistill run` on each named config and rewrite BENCHMARKS.md from the run directories.

    python benchmarks/spine.py tweeteval-offensive tweeteval-hate tweeteval-emotion jigsaw-toxic

Runs already finished in runs/bench/<name> are reused (the pipeline resumes); pass --fresh to redo them.
BENCHMARKS.md gets one section per finished run under runs/bench/, so datasets can be run one at a time.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from bertdistill import io
from bertdistill.cli import main as cli_main
from bertdistill.report import findings, markdown_table

ROOT = Path(__file__).resolve().parents[1]


def section(name: str, out: Path) -> str:
    env, dataset = io.read_json(out / "environment.json"), io.read_json(out / "dataset.json")
    config = io.read_json(out / "config.json")
    entries = io.read_json(out / "leaderboard.json")
    metric = "mean_roc_auc" if dataset["task"] == "multilabel" else (config["data"]["metric"] or "macro_f1")
    seconds = io.read_json(out / "wall_time.json")["seconds"] if (out / "wall_time.json").exists() else None
    timing = f" Wall time of the whole run: {seconds / 60:.1f} min." if seconds else ""
    return "\n\n".join([
        f"## {name}",
        f"`bertdistill run {name} --out runs/bench/{name}` — {env['date']}, {env['machine']}, latency and "
        f"throughput at {env['threads']} thread(s), versions {env['versions']}. Test rows: "
        f"{dataset['rows']['test']}; train rows: {dataset['rows']['train']}.{timing}",
        markdown_table(entries, metric),
        "\n".join(f"- {line}" for line in findings(entries, metric)),
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    for name in args.configs:
        out = ROOT / "runs" / "bench" / name
        if args.fresh:
            shutil.rmtree(out, ignore_errors=True)
        fresh = not (out / "leaderboard.json").exists()
        start = time.perf_counter()
        if cli_main(["run", name, "--out", str(out)]) != 0:
            return 1
        if fresh:
            io.write_json(out / "wall_time.json", {"seconds": time.perf_counter() - start})
    finished = sorted(p.parent for p in (ROOT / "runs" / "bench").glob("*/leaderboard.json"))
    sections = [section(out.name, out) for out in finished]
    header = ("# Benchmarks\n\nWritten by `python benchmarks/spine.py CONFIG...`. Quality is "
              "on each dataset's held-out test split (never used for training or selection); latency is single "
              "text, end to end, warmed up; speed-ups are ratios measured in the same run.")
    io.write_text(ROOT / "BENCHMARKS.md", "\n\n".join([header, *sections]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
