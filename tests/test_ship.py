"""Using a finished run without the pipeline: `bertdistill.load`, `bertdistill predict`, and a light start-up."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import bertdistill
from bertdistill import pipeline
from bertdistill.cli import main
from bertdistill.config import config_from_dict
from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.ship.api import recommended

TEXTS = ["you are a wonderful person", "shut up you idiot", "", "🙂 ünïcödé text " * 30]
HEAVY = ("torch", "transformers", "sklearn", "pandas", "scipy", "onnxruntime")


def run_of(run_dir) -> pipeline.Run:
    return pipeline.Run(config_from_dict(files.read_json(run_dir / "config.json")), run_dir)


def entry(name: str, val: float | None, p50: float | None, role: str = "distilled") -> dict:
    return {"name": name, "role": role, "val_score": val, "latency_ms": {"p50": p50}}


def test_recommended_is_best_on_val_and_ties_go_to_the_fastest():
    entries = [entry("teacher", 0.90, 80.0, "teacher"), entry("teacher-onnx-int8", 0.90, 20.0, "teacher"),
               entry("cnn-kd", 0.800, 0.9), entry("tfidf-soft-lr", 0.797, 0.2), entry("bilstm-kd", 0.79, 0.1),
               entry("unevaluated", None, None)]
    assert recommended(entries) == "tfidf-soft-lr"  # within half a point of cnn-kd, and faster
    entries[3]["val_score"] = 0.794
    assert recommended(entries) == "cnn-kd"
    with pytest.raises(BertdistillError, match="no evaluated student"):
        recommended(entries[:2])


def test_load_any_student_ensemble_or_teacher_row(offensive_run_dir):
    run = run_of(offensive_run_dir)
    in_process = pipeline.load_models(run)
    leaderboard = {e["name"]: e for e in files.read_json(offensive_run_dir / "leaderboard.json")}
    labels = files.read_json(offensive_run_dir / "dataset.json")["label_names"]
    for name in ["teacher", "tfidf-lr", "static-kd", "cnn-kd", "minibert-kd-int8",
                 *(spec.name for spec in run.config.ensembles if spec.name in in_process)]:
        model = bertdistill.load(offensive_run_dir, name)
        probs = model.predict_proba(TEXTS)
        assert probs.shape == (len(TEXTS), len(labels))
        np.testing.assert_allclose(probs, in_process[name].predict_proba(TEXTS), atol=1e-6)
        assert model.predict(TEXTS) == [labels[i] for i in probs.argmax(axis=1)]
        assert model.label_names == labels and model.leaderboard == leaderboard[name]


def test_load_without_a_name_gives_the_recommended_model(offensive_run_dir):
    model = bertdistill.load(offensive_run_dir)
    assert model.name == recommended(files.read_json(offensive_run_dir / "leaderboard.json"))
    assert model.leaderboard["role"] != "teacher"


def test_load_refuses_unknown_names_strings_and_non_runs(offensive_run_dir, tmp_path):
    with pytest.raises(BertdistillError, match="no model 'nope'.*tfidf-lr"):
        bertdistill.load(offensive_run_dir, "nope")
    with pytest.raises(TypeError, match="list of texts"):
        bertdistill.load(offensive_run_dir, "tfidf-lr").predict("one string")
    with pytest.raises(BertdistillError, match="no config.json"):
        bertdistill.load(tmp_path, "tfidf-lr")


def test_multilabel_predict_gives_a_list_of_labels_per_text(jigsaw_run_dir):
    model = bertdistill.load(jigsaw_run_dir, "tfidf-lr")  # not evaluated: thresholds 0.5, no leaderboard entry
    probs = model.predict_proba(TEXTS)
    predicted = model.predict(TEXTS)
    assert model.leaderboard is None and all(isinstance(labels, list) for labels in predicted)
    assert predicted == [[n for n, p in zip(model.label_names, row) if p >= 0.5] for row in probs]
    with pytest.raises(BertdistillError, match="no evaluated student to recommend"):
        bertdistill.load(jigsaw_run_dir)


def test_predict_texts_to_jsonl_on_stdout(offensive_run_dir, capsys):
    assert main(["predict", str(offensive_run_dir), "--model", "tfidf-lr", *TEXTS[:2]]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = bertdistill.load(offensive_run_dir, "tfidf-lr")
    assert [row["text"] for row in rows] == TEXTS[:2]
    assert [row["labels"] for row in rows] == expected.predict(TEXTS[:2])
    np.testing.assert_allclose([list(row["probabilities"].values()) for row in rows],
                               expected.predict_proba(TEXTS[:2]), atol=1e-6)


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "txt"])
def test_predict_a_file_in_batches_to_csv(offensive_run_dir, tmp_path, suffix):
    texts = [f"text number {i} you idiot" if i % 3 else f"lovely day {i}" for i in range(7)] + ["a, \"quoted\" one"]
    source = tmp_path / f"in.{suffix}"
    if suffix == "csv":
        with source.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([["id", "tweet"], *[[i, t] for i, t in enumerate(texts)]])
    elif suffix == "jsonl":
        source.write_text("".join(json.dumps({"tweet": t}) + "\n" for t in texts), encoding="utf-8")
    else:
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    output = tmp_path / "out.csv"
    assert main(["predict", str(offensive_run_dir), "--model", "cnn-kd", "--input", str(source), "--column", "tweet",
                 "--output", str(output), "--batch-size", "3"]) == 0
    with output.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    model = bertdistill.load(offensive_run_dir, "cnn-kd")
    assert [row["text"] for row in rows] == texts
    assert [row["labels"] for row in rows] == model.predict(texts)
    probs = np.array([[float(row[f"p_{name}"]) for name in model.label_names] for row in rows])
    np.testing.assert_allclose(probs, model.predict_proba(texts), atol=1e-6)


@pytest.mark.parametrize("content, argv_extra, needle", [
    ("id,body\n1,hello\n", [], "no column 'text' (columns: id, body)"),
    ('{"text": "fine"}\nnot json\n', [], "line 2: not JSON"),
    ('{"text": "fine"}\n{"body": "x"}\n', [], "line 2: no string field 'text'"),
    ("text\nhello\n", ["--model", "nope"], "no model 'nope'"),
    ("text\nhello\n", ["--format", "xml"], "invalid choice"),
])
def test_predict_bad_input_is_one_line_exit_2_and_writes_nothing(offensive_run_dir, tmp_path, capsys, content,
                                                                 argv_extra, needle):
    source = tmp_path / ("in.jsonl" if content.startswith("{") or "not json" in content else "in.csv")
    source.write_text(content, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    try:
        code = main(["predict", str(offensive_run_dir), "--input", str(source), "--output", str(output),
                     *argv_extra])
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err
    assert not output.exists() and list(tmp_path.iterdir()) == [source]


def test_predict_needs_texts_or_an_input_file_not_both(offensive_run_dir, tmp_path, capsys):
    assert main(["predict", str(offensive_run_dir)]) == 2
    assert main(["predict", str(offensive_run_dir), "hello", "--input", str(tmp_path / "x.txt")]) == 2
    assert "give texts or --input FILE" in capsys.readouterr().err


def imported_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["run", "no-such-config"],
    ["run", "quickstart", "--set", "students.include=['nope']"],
    ["run", "jigsaw-toxic", "--set", "data.path='no/such/dataset'"],
    ["predict", "/nonexistent-run", "--input", "/nonexistent.csv"],
])
def test_help_and_bad_input_answer_without_the_heavy_libraries(argv):
    code = ("from bertdistill.cli import main\n"
            f"try:\n    code = main({argv!r})\nexcept SystemExit as exit_:\n    code = exit_.code\n"
            "assert code in (0, 2), code")
    assert imported_after(code) == []


def test_importing_the_package_is_light():
    assert imported_after("import bertdistill; assert callable(bertdistill.load)") == []
