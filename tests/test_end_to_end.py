"""`bertdistill run` on small slices of the real datasets in ../shared/data, with the real MiniLM teacher."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertdistill.cli import main
from bertdistill.pipeline import settings_key

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QUICK = ["--set", 'teacher.backbone="minilm"', "--set", "data.max_train=240", "--set", "data.max_eval=120",
         "--set", "teacher.epochs=1",
         "--set", "teacher.max_length=64", "--set", "eval.latency_texts=15", "--set", "eval.warmup=3",
         "--set", "eval.throughput_texts=30", "--set", "students.trials=2", "--data-dir", str(DATA),
         "--set", 'students.include=["tfidf-lr", "tfidf-soft-lr", "tfidf-logit-ridge", "bilstm", "bilstm-kd"]',
         "--set", "students.neural.epochs=1", "--set", "transfer.max_texts=60"]  # offensive: a few corpus tweets

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not DATA.exists(), reason="needs ../shared/data")]


TEACHER_ROWS = ["teacher", "teacher-onnx", "teacher-onnx-int8"]
STUDENTS = ["tfidf-lr", "tfidf-soft-lr", "tfidf-logit-ridge", "bilstm", "bilstm-kd"]


def _leaderboard(out: Path) -> list[dict]:
    entries = json.loads((out / "leaderboard.json").read_text())
    names = [e["name"] for e in entries]
    roles = {e["name"]: e["role"] for e in entries}
    assert names[:3] == TEACHER_ROWS
    assert set(STUDENTS) <= {n for n, r in roles.items() if r in ("baseline", "distilled")}
    # the val-weighted ensemble always exists; the greedy one only if a student fits 1/100 of the teacher's p50
    ensembles = [n for n in names if roles[n] == "ensemble"]
    assert "ensemble-weighted" in ensembles and set(ensembles) <= {"ensemble-greedy", "ensemble-weighted"}
    assert names[-len(ensembles):] == ensembles  # teacher rows, students, then ensembles
    if "ensemble-greedy" not in names:
        assert "Ensemble `ensemble-greedy` is EMPTY: no student fits the latency budget" in (
            out / "report.md").read_text()
    assert {e["role"] for e in entries} == {"teacher", "baseline", "distilled", "ensemble"}
    for entry in entries:
        assert entry["latency_ms"]["p50"] > 0 and entry["latency_ms"]["p95"] >= entry["latency_ms"]["p50"]
        assert entry["throughput_per_s"] > 0 and entry["size_bytes"] > 0 and entry["n_params"] > 0
        assert 0 <= entry["fidelity"]["agreement"] <= 1 and 0 <= entry["val_agreement"] <= 1
        trains = entry["role"] in ("baseline", "distilled")  # the teacher's fine-tuning is timed by its own stage
        assert (entry["train_seconds"] > 0) if trains else (entry["train_seconds"] is None)
    teacher, onnx, int8 = entries[:3]
    assert teacher["fidelity"] == {"agreement": 1.0, "cosine": pytest.approx(1.0), "kl": pytest.approx(0.0)}
    assert teacher["n_params"] > 20_000_000  # the real all-MiniLM-L6-v2 backbone, not a toy
    assert onnx["fidelity"]["agreement"] == 1.0 and onnx["fidelity"]["kl"] < 1e-6  # fp32 export: same model
    assert teacher["val_agreement"] == onnx["val_agreement"] == 1.0
    assert int8["fidelity"]["agreement"] >= 0.9 and int8["size_bytes"] < onnx["size_bytes"]
    for entry in entries:
        assert set(entry["speedups"]) == set(TEACHER_ROWS) and 0 <= entry["ece"] <= 1
    diagnostics = json.loads((out / "diagnostics.json").read_text())
    assert set(diagnostics["calibration"]) == set(names)
    assert {(c["model"], c["versus"]) for c in diagnostics["comparisons"]} >= {
        ("tfidf-soft-lr", "tfidf-lr"), ("bilstm-kd", "bilstm"), ("ensemble-weighted", "teacher"),
        ("teacher-onnx-int8", "teacher")}
    assert diagnostics["dark_knowledge"]["examples"]
    return entries


def test_run_tweeteval_offensive_slice(tmp_path, capsys):
    out = tmp_path / "offensive"
    assert main(["run", "tweeteval-offensive", "--out", str(out), *QUICK]) == 0
    entries = _leaderboard(out)
    for entry in entries:
        assert 0 <= entry["metrics"]["macro_f1"] <= 1 and "accuracy" in entry["metrics"]
        assert set(entry["metrics"]["per_class_f1"]) == {"not-offensive", "offensive"}
    names = {e["name"] for e in entries}
    distilled = [e for e in entries if e["role"] == "distilled"]
    assert all(e["gain_vs_twin"] is not None for e in distilled if e["twin"] in names)  # a twin may be left out
    for name in ("config.json", "dataset.json", "report.md", "report.html", "quality_vs_latency.png",
                 "reliability.png", "test_probs.npz"):
        assert (out / name).stat().st_size > 0
    assert "hard-label twin `tfidf-lr`" in (out / "report.md").read_text()
    assert "tfidf-soft-lr" in capsys.readouterr().out  # the leaderboard is printed

    # Re-running resumes: nothing is trained again, and the leaderboard is rebuilt.
    assert main(["run", "tweeteval-offensive", "--out", str(out), *QUICK]) == 0
    printed = capsys.readouterr().out
    assert "already trained" in printed and "teacher epoch 1:" not in printed

    # A student saved by an older bertdistill, which lacked a setting added since, is kept while that setting
    # stays at its default, and its record is brought up to date.
    record_path = out / "students" / "bilstm-kd" / "trained_with.json"
    record = json.loads(record_path.read_text())
    current_key = record["key"]
    del record["settings"]["students"]["neural"]["dropout"]
    record["key"] = settings_key(record["settings"])
    record_path.write_text(json.dumps(record))
    assert main(["students", "--out", str(out)]) == 0
    assert "student bilstm-kd: already trained" in capsys.readouterr().out
    assert json.loads(record_path.read_text())["key"] == current_key

    # Tuning the neural students retrains them alone: the TF-IDF students do not read those settings.
    assert main(["students", "--out", str(out), "--set", "students.neural.dropout=0.3"]) == 0
    printed = capsys.readouterr().out
    for name in ("tfidf-lr", "tfidf-soft-lr", "tfidf-logit-ridge"):
        assert f"student {name}: already trained" in printed
    for name in ("bilstm", "bilstm-kd"):
        assert f"student {name}: students.neural.dropout changed since it was trained; training it again" in printed


def test_run_jigsaw_multilabel_slice(tmp_path):
    out = tmp_path / "jigsaw"
    assert main(["run", "jigsaw-toxic", "--out", str(out), *QUICK]) == 0
    entries = _leaderboard(out)
    labels = {"toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"}
    for entry in entries:
        metrics = entry["metrics"]
        assert 0 <= metrics["mean_roc_auc"] <= 1 and "macro_f1" in metrics and "macro_f1_tuned" in metrics
        assert set(metrics["per_label_roc_auc"]) == labels
        assert len(entry["thresholds"]) == 6


def test_stage_by_stage_with_reused_teacher(tmp_path):
    """Each stage runs alone; a teacher fine-tuned in one run is reused by another."""
    first = tmp_path / "first"
    assert main(["teacher", "tweeteval-offensive", "--out", str(first), *QUICK]) == 0
    second = tmp_path / "second"
    reuse = ["--set", f'teacher.reuse="{first / "teacher" / "model"}"']
    for stage in ("teacher", "label", "students", "ensembles"):
        assert main([stage, "tweeteval-offensive", "--out", str(second), *QUICK, *reuse]) == 0
    for stage in ("evaluate", "report"):  # later stages read the run's own config.json
        assert main([stage, "--out", str(second)]) == 0
    assert (second / "report.html").exists()
    assert len(json.loads((second / "leaderboard.json").read_text())) >= 7
