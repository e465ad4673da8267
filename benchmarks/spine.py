"""Run the configured datasets end to end and rewrite BENCHMARKS.md from their run directories.

    python benchmarks/spine.py tweeteval-offensive tweeteval-emotion tweeteval-hate jigsaw-toxic --seeds 14 15
    python benchmarks/spine.py --evaluate-only tweeteval-hate   # re-measure a finished run, no training
    python benchmarks/spine.py --seeds-only tweeteval-hate --seeds 14 15   # only add student seed replicates
    python benchmarks/spine.py --report-only          # only rewrite every run's page and BENCHMARKS.md
    python benchmarks/spine.py --report-only tweeteval-hate   # ... and only hate's results page

Each dataset runs `bertdistill run NAME --out runs/bench/NAME` (resumable: a finished teacher, soft labels and
students are reused; ensembles, evaluation and report are redone, so every number of a section is measured in one
run on one machine). `--seeds` adds student replicates: the same teacher and soft labels, students (and the
ensembles built from them) retrained with each extra seed under runs/bench/NAME/seeds/seed-S, scored on test;
seeds.json then holds the headline metric as mean ± std over the main seed and the extra ones.
Per dataset, benchmarks/results/<dataset>.md (environment, the leaderboard with speed-ups against the PyTorch, ONNX
and int8 teachers, findings, seeds table, Pareto plot) and benchmarks/results/<dataset>.json (leaderboard,
environment, dataset summary, seeds: what the summary is computed from, so datasets not re-run here keep their
rows). BENCHMARKS.md is one screen: the headline table across datasets, one plot of every student's share of its
teacher's score against its share of the teacher's latency, and links to the per-dataset pages.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from bertdistill import pipeline
from bertdistill.cli import main as cli_main
from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.ensembles import ensemble
from bertdistill.evaluation.stats import mean_std
from bertdistill.report.findings import (
    FASTTEXT,
    STATIC,
    best_in_budget,
    distilled_neural_students,
    findings,
    int8_students,
)
from bertdistill.report.markdown import markdown_table
from bertdistill.rundir import ChildRun

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "runs" / "bench"
PLOTS = ROOT / "benchmarks" / "plots"
RESULTS = ROOT / "benchmarks" / "results"


def run_seed(out: Path, seed: int) -> dict[str, float]:
    """Students and ensembles retrained with `seed` on the parent's soft labels; test headline metric by model."""
    raw = files.read_json(out / "config.json")
    raw["students"]["seed"] = seed
    run = ChildRun(config_from_dict(raw, str(out / "config.json")), out / "seeds" / f"seed-{seed}",
                            parent=out)
    files.write_json(run.out / "config.json", run.config.model_dump(mode="json"))
    pipeline.train_students(run)
    students = pipeline.load_students(run)
    ensemble.train_all(run, students)
    models = {**students, **ensemble.load_all(run.config.ensembles, students, run.out / "ensembles")}
    test = run.dataset.test
    return {name: run.scorer.score(test.labels, model.predict_proba(test.texts)) for name, model in models.items()}


def seed_summary(out: Path, seeds: list[int]) -> dict:
    """Mean ± std of each student's and ensemble's test metric over the main run and the seed replicates."""
    main_seed = files.read_json(out / "config.json")["students"]["seed"]
    entries = {e["name"]: e for e in files.read_json(out / "leaderboard.json")}
    metric = _metric(out)
    scores = {main_seed: {name: e["metrics"][metric] for name, e in entries.items() if e["role"] != "teacher"}}
    for seed in seeds:
        if seed != main_seed:
            scores[seed] = run_seed(out, seed)
    names = [name for name in scores[main_seed] if all(name in by_seed for by_seed in scores.values())]
    models = {name: {**mean_std([scores[s][name] for s in scores]), "seeds": list(scores),
                     "values": [scores[s][name] for s in scores]} for name in names}
    return {"metric": metric, "models": models,
            "note": "TF-IDF students are fitted by deterministic solvers, so only seeded students can vary."}


def _metric(out: Path) -> str:
    dataset, config = files.read_json(out / "dataset.json"), files.read_json(out / "config.json")
    return "mean_roc_auc" if dataset["task"] == "multilabel" else (config["data"]["metric"] or "macro_f1")


def run_dataset(name: str, seeds: list[int], fresh: bool, evaluate_only: bool, seeds_only: bool = False) -> None:
    """The whole pipeline on one built-in config (or, evaluate_only, re-measure a finished run directory; or,
    seeds_only, only add seed replicates to it)."""
    out = BENCH / name
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    first_time = not (out / "leaderboard.json").exists()
    commands = ([] if seeds_only else
                [[stage, "--out", str(out)] for stage in ("ensembles", "evaluate", "report")] if evaluate_only
                else [["run", name, "--out", str(out)]])
    for command in commands:
        if cli_main(command) != 0:
            raise SystemExit(f"bertdistill {' '.join(command)} failed")
    if first_time and not evaluate_only:
        files.write_json(out / "wall_time.json", {"seconds": time.perf_counter() - start})
    if seeds:
        files.write_json(out / "seeds.json", seed_summary(out, seeds))
        cli_main(["report", "--out", str(out)])  # the report shows the seeds table too


def section(out: Path) -> str:
    env, dataset = files.read_json(out / "environment.json"), files.read_json(out / "dataset.json")
    entries, metric = files.read_json(out / "leaderboard.json"), _metric(out)
    diagnostics = files.read_json(out / "diagnostics.json") if (out / "diagnostics.json").exists() else {}
    seconds = files.read_json(out / "wall_time.json")["seconds"] if (out / "wall_time.json").exists() else None
    PLOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "quality_vs_latency.png", PLOTS / f"{out.name}.png")
    parts = [f"## {out.name}",
             f"`bertdistill run {out.name} --out runs/bench/{out.name}` — {env['date']}, {env['machine']}, latency "
             f"and throughput at {env['threads']} thread(s), versions {env['versions']}. Rows: train "
             f"{dataset['rows']['train']}, val {dataset['rows']['val']}, test {dataset['rows']['test']}."
             + (f" First full run: {seconds / 60:.1f} min." if seconds else "")
             + (f" Load average (1 min) when evaluation started: {env['load_average']:.2f}: other jobs shared the "
                "machine, so latencies are inflated." if env.get("load_average", 0) > 1.5 else ""),
             markdown_table(entries, metric),
             "\n".join(f"- {line}" for line in findings(entries, metric, diagnostics))]
    if (out / "seeds.json").exists():
        seeds = files.read_json(out / "seeds.json")
        rows = [f"| {name} | {100 * s['mean']:.2f} ± {100 * s['std']:.2f} | {s['n']} |"
                for name, s in seeds["models"].items()]
        parts.append(f"Test {metric} over student seeds {list(seeds['models'].values())[0]['seeds']} "
                     f"(teacher fixed). {seeds['note']}\n\n| model | mean ± std | seeds |\n|---|---|---|\n"
                     + "\n".join(rows))
    if (out / "ablation.md").exists():  # written by benchmarks/ablation.py: mean ± std over seeds per loss
        table = (out / "ablation.md").read_text(encoding="utf-8").split("\n", 2)[2].strip()
        parts.append(f"Distillation ablation (`python benchmarks/ablation.py runs/bench/{out.name} ...`; test scores, "
                     f"so read it as a diagnostic, not as a selection):\n\n{table}")
    parts.append(f"![{out.name}: quality vs latency, Pareto front dashed](../plots/{out.name}.png)")
    return "\n\n".join(parts)


def record(out: Path) -> dict:
    """What the summary and the headline plot need of a finished run, kept in benchmarks/results/<name>.json."""
    seeds = files.read_json(out / "seeds.json") if (out / "seeds.json").exists() else None
    return {"dataset": out.name, "metric": _metric(out), "environment": files.read_json(out / "environment.json"),
            "rows": files.read_json(out / "dataset.json")["rows"],
            "leaderboard": files.read_json(out / "leaderboard.json"), "seeds": seeds}


def summary(records: list[dict]) -> str:
    """One row per dataset: the targets, as measured."""
    lines = ["| dataset | metric | teacher (test, p50) | best student at <= 1/100 of the teacher's p50 "
             "| best ensemble at <= 1/100 | best distilled TF-IDF vs tfidf-lr [95% CI] | bilstm-kd vs bilstm [95% CI] "
             "| best distilled int8 student at <= 1/20 of the teacher's p50 "
             "| best student (share of teacher) | best ensemble: gap, latency share "
             "| int8 teacher: speed-up, agreement | static-kd vs fasttext-lib: points, p50 ms |", "|" + "---|" * 12]
    for record_ in records:
        entries, metric = record_["leaderboard"], record_["metric"]
        by_name = {e["name"]: e for e in entries}
        teacher = by_name["teacher"]
        students = [e for e in entries if e["role"] in ("baseline", "distilled")]
        ensembles = [e for e in entries if e["role"] == "ensemble"]
        best = max(students, key=lambda e: e["metrics"][metric])
        cells = [f"[{record_['dataset']}](benchmarks/results/{record_['dataset']}.md)", metric,
                 f"{100 * teacher['metrics'][metric]:.2f}, {teacher['latency_ms']['p50']:.1f} ms",
                 _best_within(students, teacher, metric, 100), _best_within(ensembles, teacher, metric, 100),
                 _linear_gain(students),
                 _gain(by_name.get("bilstm-kd")), _best_int8(students, teacher, metric),
                 f"{best['name']} {100 * best['metrics'][metric]:.2f} "
                 f"({100 * best['metrics'][metric] / teacher['metrics'][metric]:.1f}%)"]
        if ensembles:
            top = max(ensembles, key=lambda e: e["metrics"][metric])
            cells.append(f"{top['name']} {100 * (top['metrics'][metric] - teacher['metrics'][metric]):+.2f} pts, "
                         f"1/{teacher['latency_ms']['p50'] / top['latency_ms']['p50']:.0f}")
        else:
            cells.append("none built")
        int8 = by_name.get("teacher-onnx-int8")
        cells.append("" if int8 is None else f"{teacher['latency_ms']['p50'] / int8['latency_ms']['p50']:.2f}x, "
                                             f"{100 * int8['fidelity']['agreement']:.1f}%")
        cells.append(_static_vs_fasttext(by_name, metric))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _best_within(models: list[dict], teacher: dict, metric: str, fraction: int) -> str:
    """The best of `models` whose p50 is at most 1/fraction of the teacher's, as a share of the teacher's score."""
    top = best_in_budget(models, metric, teacher, 1 / fraction)
    if top is None:
        return f"none at <= 1/{fraction}"
    return (f"{top['name']} {100 * top['metrics'][metric]:.2f} "
            f"({100 * top['metrics'][metric] / teacher['metrics'][metric]:.1f}%), {top['latency_ms']['p50']:.3f} ms")


def headline_plot(records: list[dict]) -> bytes:
    """Every student and ensemble of every dataset: share of its teacher's test score against share of the
    teacher's single-text p50 (log scale), with the 1/100 and 1/20 budgets and the 97% / 99% quality lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bertdistill.report.plots import _png

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for index, record_ in enumerate(records):
        metric, entries = record_["metric"], record_["leaderboard"]
        teacher = next(e for e in entries if e["name"] == "teacher")
        models = [e for e in entries if e["role"] in ("baseline", "distilled", "ensemble")]
        x = [e["latency_ms"]["p50"] / teacher["latency_ms"]["p50"] for e in models]
        y = [100 * e["metrics"][metric] / teacher["metrics"][metric] for e in models]
        axes.scatter(x, y, s=18, color=f"C{index}",
                     label=f"{record_['dataset']} (teacher {teacher['latency_ms']['p50']:.0f} ms)")
    for budget in (100, 20):
        axes.axvline(1 / budget, color="grey", linestyle=":", linewidth=1)
        axes.annotate(f"1/{budget}", (1 / budget, 1), xycoords=("data", "axes fraction"), color="grey",
                      va="top", ha="left")
    for share in (97, 99):
        axes.axhline(share, color="grey", linestyle="--", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_xlabel("single-text p50 / teacher's p50 (log)")
    axes.set_ylabel("test score, % of the teacher's")
    axes.set_title("Students and ensembles against their teacher")
    axes.legend(fontsize=8, loc="lower right")
    return _png(figure)


def _linear_gain(students: list[dict]) -> str:
    """The distilled TF-IDF student with the largest test gain over tfidf-lr, with its paired bootstrap CI."""
    linear = [e for e in students if e["role"] == "distilled" and e.get("twin") == "tfidf-lr" and e.get("ci_vs_twin")]
    return _gain(max(linear, key=lambda e: e["gain_vs_twin"])) if linear else "-"


def _gain(entry: dict | None) -> str:
    """A distilled student's test gain over its hard-label twin with the paired bootstrap CI; '-' without one."""
    if entry is None or not entry.get("ci_vs_twin"):
        return "-"
    ci = entry["ci_vs_twin"]
    return f"{entry['name']} {100 * entry['gain_vs_twin']:+.2f} [{100 * ci['low']:+.2f}, {100 * ci['high']:+.2f}]"


def _best_int8(students: list[dict], teacher: dict, metric: str) -> str:
    """The best distilled int8 neural student at <= 1/20 of the teacher's p50 (the target: >= 99% of its score)."""
    int8 = int8_students(distilled_neural_students(students))
    return _best_within(int8, teacher, metric, 20) if int8 else "-"


def _static_vs_fasttext(by_name: dict[str, dict], metric: str) -> str:
    """static-kd's test gain over the fastText library on gold labels, and both p50s (the target: >= +3 points at
    no more latency)."""
    static, fasttext = by_name.get(STATIC), by_name.get(FASTTEXT)
    if static is None or fasttext is None:
        return "-"
    return (f"{100 * (static['metrics'][metric] - fasttext['metrics'][metric]):+.2f} pts, "
            f"{static['latency_ms']['p50']:.4f} vs {fasttext['latency_ms']['p50']:.4f} ms")


def write_benchmarks(names: list[str]) -> None:
    """benchmarks/results/<name>.md and .json for the named runs (every run here when none is named), then
    BENCHMARKS.md from every results/*.json. A run not named keeps its committed page even when runs/bench holds a
    newer, uncommitted evaluation of it (say, one measured on a slower machine)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = [BENCH / name for name in names] if names else [p.parent for p in BENCH.glob("*/leaderboard.json")]
    for out in sorted(out for out in runs if (out / "leaderboard.json").exists()):
        files.write_text(RESULTS / f"{out.name}.md", section(out) + "\n")
        files.write_json(RESULTS / f"{out.name}.json", record(out))
    records = [record_ for record_ in map(files.read_json, sorted(RESULTS.glob("*.json")))
               if "leaderboard" in record_]  # results/ also holds other benchmarks' files (export-*, startup)
    PLOTS.mkdir(parents=True, exist_ok=True)
    files.write_bytes(PLOTS / "headline.png", headline_plot(records))
    header = ("# Benchmarks\n\nWritten by `python benchmarks/spine.py CONFIG... [--seeds S...]`; how it measures: "
              "[docs/benchmarks.md](docs/benchmarks.md). Quality is on each dataset's held-out test split; latency "
              "is single text, end to end (raw string in, probabilities out), warmed up, at 1 thread; every ratio "
              "is within one run. Per dataset (leaderboard, findings, seeds, plot, machine and date): the linked "
              "pages in [benchmarks/results/](benchmarks/results/). Context and history: "
              "[benchmarks/NOTES.md](benchmarks/NOTES.md).")
    files.write_text(ROOT / "BENCHMARKS.md", "\n\n".join([
        header, summary(records), "![Every student and ensemble against its teacher](benchmarks/plots/headline.png)",
        teacher_table()]) + "\n")


def teacher_table() -> str:
    """The fine-tuned teachers' val and test scores (benchmarks/teacher_scores.json), whether or not students were
    run against them."""
    scores = files.read_json(ROOT / "benchmarks" / "teacher_scores.json")
    rows = [f"| {name} | {s['metric']} | {s['val_scores_by_epoch']['best_epoch']} | {100 * s['val']:.2f} | "
            f"{100 * s['test']:.2f} |" for name, s in scores.items()]
    return "\n".join(["Teachers as fine-tuned (`python benchmarks/teacher_scores.py NAME`; epoch chosen on val), "
                      "including datasets whose students are not yet run against them:", "",
                      "| dataset | metric | epoch | val | test |", "|---|---|---|---|---|", *rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*")
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="extra student seeds, e.g. 14 15")
    parser.add_argument("--fresh", action="store_true", help="delete runs/bench/NAME first")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="no training: rebuild ensembles, re-evaluate and report runs/bench/NAME as configured")
    parser.add_argument("--seeds-only", action="store_true",
                        help="only train the --seeds replicates of a finished run (its leaderboard is kept)")
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the named datasets' pages (all when none is named) and BENCHMARKS.md")
    args = parser.parse_args()
    if not args.report_only:
        for name in args.configs:
            run_dataset(name, args.seeds, args.fresh, args.evaluate_only, args.seeds_only)
    write_benchmarks(args.configs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
