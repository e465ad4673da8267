"""What greedy ensemble selection should climb on val: the headline metric or log-loss. Val only, never test.

    python benchmarks/ensemble_objective.py [NAME ...] [--splits 10] > benchmarks/results/ensemble-objective.json

For each finished runs/bench/NAME and each of its seed replicates (seeds/seed-S), the val set is split in halves
at random `--splits` times: greedy selection (the package's own `greedy_selection`, 1/100 of the teacher's p50
as the budget) chooses on one half with each objective, and the chosen ensemble is scored on the other half.
A set's latency here is the sum of its members' p50 from the run's leaderboard.json (the stage itself measures
each set; a sum is close enough to compare two objectives under the same budget). Prints JSON: per dataset and
seed, the mean held-out-half score with each objective, and log-loss's gain over the metric (paired by split)
with its standard error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bertdistill import pipeline
from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.ensembles.ensemble import average, greedy_selection
from bertdistill.rundir import ChildRun, Run

BENCH = Path(__file__).resolve().parents[1] / "runs" / "bench"
OBJECTIVES = ("metric", "log_loss")
MAX_ROUNDS = 12  # the shipped greedy ensemble's


def replicates(out: Path) -> list[tuple[str, Run]]:
    """The main run (seed 13 in the benchmarks) and each seed replicate, as runs whose students can be loaded."""
    runs = [("main", Run(config_from_dict(files.read_json(out / "config.json")), out))]
    for folder in sorted((out / "seeds").glob("seed-*")):
        config = config_from_dict(files.read_json(folder / "config.json"))
        runs.append((folder.name, ChildRun(config, folder, parent=out)))
    return runs


def held_out_scores(run: Run, p50: dict[str, float], budget: float, splits: int) -> dict[str, list[float]]:
    students = {name: s for name, s in pipeline.load_students(run).items() if s.shippable and name in p50}
    val = run.dataset.val
    probs = {name: student.predict_proba(val.texts) for name, student in students.items()}
    rng = np.random.default_rng(0)
    scores = {objective: [] for objective in OBJECTIVES}
    for _ in range(splits):
        order = rng.permutation(len(val.labels))
        chosen, held = order[: len(order) // 2], order[len(order) // 2:]
        choosing_half = {n: p[chosen] for n, p in probs.items()}
        for objective in OBJECTIVES:
            counts = greedy_selection(choosing_half, val.labels[chosen], run.scorer,
                                      lambda names: sum(p50[n] for n in names), budget, MAX_ROUNDS,
                                      objective)["counts"]
            mix = average({n: probs[n][held] for n in counts}, counts)
            scores[objective].append(run.scorer.score(val.labels[held], mix))
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=[p.parent.name for p in sorted(BENCH.glob("*/leaderboard.json"))])
    parser.add_argument("--splits", type=int, default=10)
    args = parser.parse_args(argv)
    result = {}
    for name in args.names:
        out = BENCH / name
        entries = {e["name"]: e for e in files.read_json(out / "leaderboard.json")}
        p50 = {n: e["latency_ms"]["p50"] for n, e in entries.items() if e["role"] in ("baseline", "distilled")}
        budget = 0.01 * entries["teacher"]["latency_ms"]["p50"]
        for label, run in replicates(out):
            scores = held_out_scores(run, p50, budget, args.splits)
            gain = 100 * (np.array(scores["log_loss"]) - np.array(scores["metric"]))  # paired by split
            result[f"{out.name}/{label}"] = {
                "metric": run.scorer.metric, "budget_ms": budget,
                **{f"by_{objective}": 100 * float(np.mean(s)) for objective, s in scores.items()},
                "log_loss_gain": float(gain.mean()), "log_loss_gain_se": float(gain.std(ddof=1) / len(gain) ** 0.5)}
            print(out.name, label, json.dumps(result[f"{out.name}/{label}"]), file=sys.stderr, flush=True)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
