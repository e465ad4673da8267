"""Distilled students with and without the augmented / unlabelled transfer set, mean ± std over student seeds.

    python benchmarks/transfer_ablation.py tweeteval-offensive tweeteval-hate tweeteval-emotion jigsaw-toxic \\
        --seeds 13 14 15 [--students tfidf-soft-lr tfidf-logit-ridge bilstm-kd] [--max-texts 40000]

Needs each dataset's teacher in BENCH/NAME (default runs/bench; benchmarks/spine.py makes them, or
`bertdistill teacher NAME --out runs/bench/NAME`). The variants of the transfer set:
  train only    the train texts (what the pipeline labels by default)
  augmented     + Tang et al. (2019) augmentation of them: p_mask = p_pos = 0.1, p_ng = 0.25, N = 20
  unlabelled    + an unlabelled in-domain corpus: the other TweetEval tasks' train tweets (minus any text of
                this task's val or test split) for TweetEval, the Civil Comments posts of
                civil_comments_toxic_spans for Jigsaw
  both          augmented + unlabelled
Extra texts are capped at --max-texts (a seeded subsample). The seed sets both the students' seed and the transfer
set's (which augmentations and which capped subsample), so the std covers the draw of extra texts too. Each
(variant, seed) transfer set is labeled once, with
teacher.label_backend = --label-backend (default onnx: ONNX Runtime fp32, PyTorch's logits to ~1e-6, faster on a
CPU), into the parent run's soft-label cache; each (variant, seed) trains the students in
BENCH/NAME/transfer-ablation/VARIANT/seed-S and scores them once on test. Results: BENCH/NAME/transfer_ablation.json
(finished cells are reused) and the ablation section of benchmarks/TRANSFER.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bertdistill import pipeline
from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.data.load import data_dirs
from bertdistill.rundir import ChildRun

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from labeling_speed import write_section  # noqa: E402  (a sibling script)

TANG = {"augment": True, "p_mask": 0.1, "p_pos": 0.1, "p_ng": 0.25, "samples_per_text": 20}
TWEETEVAL_TASKS = ["emotion", "hate", "irony", "offensive", "stance/abortion", "stance/atheism", "stance/climate",
                   "stance/feminist", "stance/hillary"]


def unlabelled_corpus(parent: pipeline.Run, name: str) -> dict:
    """A [transfer] corpus entry: in-domain texts the teacher can label (the transfer set drops val / test texts)."""
    if name.startswith("jigsaw"):
        return {"path": "civil_comments_toxic_spans/acl2022_annotations/comments.csv", "format": "csv",
                "column": "comment_text"}
    own = parent.config.data.path.rstrip("/")
    texts = []
    for task in TWEETEVAL_TASKS:
        for folder in data_dirs(parent.config.data):
            path = folder / "tweeteval" / task / "train_text.txt"
            if path.exists() and not own.endswith(task):
                texts += [t for t in path.read_text(encoding="utf-8").split("\n") if t.strip()]
                break
    out = parent.out / "transfer-ablation" / "unlabelled.txt"
    files.write_text(out, "\n".join(dict.fromkeys(texts)) + "\n")
    return {"path": str(out.resolve())}


def variants(parent: pipeline.Run, name: str, max_texts: int) -> dict[str, dict]:
    corpus = unlabelled_corpus(parent, name)
    capped = {"max_texts": max_texts}
    return {"train only": {}, "augmented": {**TANG, **capped}, "unlabelled": {"corpora": [corpus], **capped},
            "both": {**TANG, "corpora": [corpus], **capped}}


def cell_run(parent: pipeline.Run, variant: str, transfer: dict, seed: int, students: list[str],
             backend: str) -> ChildRun:
    raw = parent.config.model_dump(mode="json")
    raw["transfer"] = {**transfer, "seed": seed} if transfer else {}  # the seed also draws augmentation and subsample
    raw["students"].update(include=students, seed=seed)
    raw["teacher"]["label_backend"] = backend
    slug = variant.replace(" ", "-")
    return ChildRun(config_from_dict(raw, f"{variant} / seed {seed}"),
                   parent.out / "transfer-ablation" / slug / f"seed-{seed}", parent=parent.out)


def run_dataset(bench: Path, name: str, seeds: list[int], students: list[str], max_texts: int,
                backend: str, wanted: list[str]) -> dict:
    folder = bench / name
    if not (folder / "teacher" / "model" / "bertdistill.json").exists():
        raise SystemExit(f"{folder}: no teacher; run benchmarks/spine.py {name} (or `bertdistill teacher`) first")
    parent = pipeline.Run(config_from_dict(files.read_json(folder / "config.json")), folder)
    results_path = folder / "transfer_ablation.json"
    results = files.read_json(results_path) if results_path.exists() else {"scores": {}, "transfer_sets": {}}
    for variant, transfer in variants(parent, name, max_texts).items():
        if variant not in wanted:
            continue
        for seed in seeds:
            done = results["scores"].setdefault(variant, {}).get(str(seed), {})
            todo = [s for s in students if s not in done]
            if not todo:
                continue
            run = cell_run(parent, variant, transfer, seed, todo, backend)
            pipeline.label(run)  # one labeling per variant and seed (the seed draws the extra texts)
            results["transfer_sets"][variant] = pipeline.transfer_set(run).counts
            pipeline.train_students(run)
            test = run.dataset.test
            for student, model in pipeline.load_students(run).items():
                done[student] = run.scorer.score(test.labels, model.predict_proba(test.texts))
            results["scores"][variant][str(seed)] = done
            results.update(metric=run.scorer.metric, students=students, seeds=seeds, label_backend=backend)
            files.write_json(results_path, results)
            print(f"{name} / {variant} / seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in done.items()))
    return results


def table(name: str, results: dict) -> str:
    """Students x variants, test metric mean ± std over seeds, and whether the best distilled student gained."""
    scores, students = results["scores"], results["students"]
    names = list(scores)
    lines = [f"### {name} (test {results['metric']}, mean ± std over seeds {results['seeds']})", "",
             "| student | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    means = {}
    for student in students:
        cells = []
        for variant in names:
            values = np.array([by_seed[student] for by_seed in scores[variant].values() if student in by_seed])
            means[(student, variant)] = (values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0)
            cells.append(f"{values.mean() * 100:.2f} ± {means[(student, variant)][1] * 100:.2f}" if len(values)
                         else "-")
        lines.append(f"| {student} | " + " | ".join(cells) + " |")
    counts = results["transfer_sets"]
    lines += ["", "Transfer set sizes: " + "; ".join(
        f"{v}: {c.get('train', 0)} train + {c.get('kept', 0)} more" for v, c in counts.items()), ""]
    best = max(students, key=lambda s: means[(s, "train only")][0])
    for variant in names[1:]:
        gain = means[(best, variant)][0] - means[(best, "train only")][0]
        std = max(means[(best, variant)][1], means[(best, "train only")][1])
        verdict = "improves" if gain > std else "does not improve"
        lines.append(f"- {variant}: the best distilled student on train only ({best}) {verdict} "
                     f"({gain * 100:+.2f} points, seed std {std * 100:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--students", nargs="+", default=["tfidf-soft-lr", "tfidf-logit-ridge", "bilstm-kd"])
    parser.add_argument("--variants", nargs="+", default=["train only", "augmented", "unlabelled", "both"],
                        help="which transfer sets ('train only' first: the others are compared with it)")
    parser.add_argument("--max-texts", type=int, default=40_000, help="most augmented + unlabelled texts per set")
    parser.add_argument("--label-backend", choices=["torch", "onnx", "onnx-int8"], default="onnx")
    parser.add_argument("--bench", type=Path, default=HERE.parent / "runs" / "bench")
    parser.add_argument("--report", default=str(HERE / "TRANSFER.md"), help="'' to write no report")
    args = parser.parse_args(argv)
    sections = [table(name, run_dataset(args.bench, name, args.seeds, args.students, args.max_texts,
                                        args.label_backend, args.variants)) for name in args.datasets]
    if args.report:
        write_section(Path(args.report), "transfer-ablation", "\n\n".join(sections))
    print("\n\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
