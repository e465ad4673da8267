"""Exported bundles: every student and ensemble of a real tiny run gives, through its own bundle.py in a fresh
interpreter that never imports torch, transformers, scikit-learn, scipy or bertdistill, the probabilities and labels
of the model in bertdistill; bad input fails with one line and leaves nothing behind."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_multiclass, make_multilabel

from bertdistill.config import NeuralConfig, StudentsConfig, config_from_dict
from bertdistill.core import files
from bertdistill.ensembles.ensemble import ENSEMBLE_FORMAT
from bertdistill.errors import BertdistillError
from bertdistill.evaluation.metrics import Scorer
from bertdistill.names import TEACHER_ROWS
from bertdistill.rundir import Run
from bertdistill.ship import bundle_loader, export
from bertdistill.ship.export import export_bundle, exportable, load_model, write_fasttext
from bertdistill.students import TrainingData, student_class
from bertdistill.students.fasttext_lib import FastTextLibStudent, train

BANNED = ["torch", "transformers", "sklearn", "scipy", "bertdistill"]
TWEET = "@user you are a total idiot, get off my timeline #fail"
TEXTS = ["", " ", "\t\n  ", "a", "!!!", TWEET, "I love this so much!!! 😂😂🔥 🙏🏽 👨‍👩‍👧‍👦",
         "❤️ e\u0301 hello\u00a0world \u200b", "Ça va? Größe, naïve café, İstanbul, ΣΑΣ", "今日は良い天気です。",
         "مرحبا بالعالم", "[CLS] [SEP] [MASK] <s> </s> [UNK] [PAD]", "THIS IS SHOUTING\tand\nnewlines\r\n  twice",
         "http://t.co/abc123 1234567890 don't can't", "so " * 700, "x" * 3000, "\x00 \x07 control"]

# Run in a fresh interpreter: load each bundle with its own bundle.py, predict, time one tweet, list banned imports.
PROBE = """
import importlib.util, json, sys, time
request = json.load(open(sys.argv[1], encoding="utf-8"))
results = {}
for i, (name, folder) in enumerate(request["bundles"].items()):
    spec = importlib.util.spec_from_file_location(f"bundle_{i}", f"{folder}/bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load(folder)
    times = []
    for _ in range(21):
        start = time.perf_counter()
        model.predict_proba([request["tweet"]])
        times.append(time.perf_counter() - start)
    texts = request["texts"]
    results[name] = {"probs": model.predict_proba(texts).tolist(), "labels": model.predict(texts),
                     "one_by_one": [model.predict_proba([text])[0].tolist() for text in texts],
                     "median_ms": sorted(times)[10] * 1e3}
imported = sorted({module.split(".")[0] for module in sys.modules} & set(request["banned"]))
print(json.dumps({"results": results, "imported": imported}))
"""


def run_bundles(bundles: dict[str, Path], folder: Path) -> dict:
    """What PROBE reports for `bundles` (name -> folder), run in one subprocess from `folder`."""
    request = folder / "request.json"
    request.write_text(json.dumps({"bundles": {n: str(f) for n, f in bundles.items()}, "texts": TEXTS,
                                   "tweet": TWEET, "banned": BANNED}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-I", "-c", PROBE, str(request)], cwd=folder, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def expected_labels(probs: np.ndarray, bundle: Path) -> list:
    spec = files.read_json(bundle / "bundle.json")
    if spec["thresholds"] is None:
        return [spec["label_names"][i] for i in probs.argmax(axis=1)]
    return [[n for n, on in zip(spec["label_names"], row >= np.array(spec["thresholds"])) if on] for row in probs]


def names_in(run_dir: Path) -> dict[str, list[str]]:
    return exportable(Run(config_from_dict(files.read_json(run_dir / "config.json")), run_dir))


def export_every_model(run_dir: Path, out: Path) -> tuple[dict[str, Path], dict[str, np.ndarray]]:
    """Every student and built ensemble of the run exported under `out`, and their in-process probabilities."""
    bundles, expected = {}, {}
    names = names_in(run_dir)
    for name in names["students"] + names["ensembles"]:
        if name in names["ensembles"] and files.read_json(run_dir / "ensembles" / name / "bertdistill.json")[
                "status"] == "empty":
            with pytest.raises(BertdistillError, match="empty"):
                export_bundle(run_dir, name, out / name)
            continue
        bundles[name] = export_bundle(run_dir, name, out / name)
        expected[name] = load_model(run_dir, name).predict_proba(TEXTS)
    return bundles, expected


@pytest.fixture(scope="module")
def word_run_dir(offensive_run_dir, multiclass_dataset, tmp_path_factory) -> Path:
    """A run directory holding one word-vocabulary CNN (the shipped configs' students all use subwords); not
    evaluated, and its config is the offensive run's."""
    folder = tmp_path_factory.mktemp("word-run")
    shutil.copy(offensive_run_dir / "config.json", folder / "config.json")
    data = multiclass_dataset
    files.write_json(folder / "dataset.json", {"name": data.name, "task": data.task, "label_names": data.label_names,
                                               "rows": {"train": 45, "val": 15, "test": 15}})
    neural = NeuralConfig(tokenizer="word", epochs=2, batch_size=8, embedding_dim=16, hidden_size=8, max_length=6,
                          device="cpu")
    student = student_class("cnn")(StudentsConfig(neural=neural)).fit(
        TrainingData(data.train.texts, data.train.labels, None, data.task, data.label_names), data.val.texts,
        data.val.labels, Scorer.for_dataset(data, None, None))
    student.save(folder / "students" / "cnn")
    return folder


@pytest.mark.parametrize("runs", [["offensive_run_dir", "word_run_dir"], ["jigsaw_run_dir"]],
                         ids=["multiclass", "multilabel"])
def test_bundles_predict_like_the_models_without_bertdistill(request, runs, tmp_path):
    bundles, expected = {}, {}
    for fixture in runs:
        exported, probs = export_every_model(request.getfixturevalue(fixture), tmp_path / fixture)
        bundles.update({f"{fixture}/{name}": folder for name, folder in exported.items()})
        expected.update({f"{fixture}/{name}": p for name, p in probs.items()})
    report = run_bundles(bundles, tmp_path)
    assert report["imported"] == []
    for name, folder in bundles.items():
        result = report["results"][name]
        np.testing.assert_allclose(result["probs"], expected[name], atol=1e-5, err_msg=name)
        np.testing.assert_allclose(result["one_by_one"], expected[name], atol=1e-5, err_msg=name)  # wordpiece.py
        assert result["labels"] == expected_labels(expected[name], folder), name
        if files.read_json(folder / "bundle.json")["model"] == "tfidf":
            assert result["median_ms"] < 2.0, (name, result["median_ms"])  # ~0.2 ms on a quiet machine


def test_every_family_and_ensembles_are_covered(offensive_run_dir):
    names = names_in(offensive_run_dir)
    assert {"tfidf-lr", "static-kd", "fasttext", "cnn-kd", "bilstm", "minibert-kd", "minibert-kd-int8"} <= set(
        names["students"])
    assert names["ensembles"]


def test_bundle_files_are_safe_formats_and_the_card_has_the_numbers(offensive_run_dir, jigsaw_run_dir, tmp_path):
    evaluated = export_bundle(offensive_run_dir, "cnn-kd", tmp_path / "cnn-kd")
    not_evaluated = export_bundle(jigsaw_run_dir, "tfidf-soft-lr", tmp_path / "tfidf-soft-lr")
    ensemble = export_bundle(offensive_run_dir, "ensemble-weighted", tmp_path / "ensemble")
    for bundle in (evaluated, not_evaluated, ensemble):
        assert {p.suffix for p in bundle.rglob("*") if p.is_file()} <= {".json", ".npz", ".onnx", ".py", ".md"}
        card = (bundle / "README.md").read_text(encoding="utf-8")
        assert not any(repr_ in card for repr_ in ("None", "{'", "['", "nan")), card
    card = (evaluated / "README.md").read_text(encoding="utf-8")
    entry = next(e for e in files.read_json(offensive_run_dir / "leaderboard.json") if e["name"] == "cnn-kd")
    assert f"{100 * entry['metrics']['macro_f1']:.2f}%" in card
    assert f"{100 * entry['fidelity']['agreement']:.2f}%" in card and " ms " in card
    assert "hard-label twin | `cnn`" in card and "temperature" in card and "thread" in card
    card = (not_evaluated / "README.md").read_text(encoding="utf-8")
    assert "Not evaluated" in card and "0.5" in card
    assert files.read_json(not_evaluated / "bundle.json")["thresholds"] == [0.5] * 6
    members = files.read_json(ensemble / "bundle.json")["members"]
    assert abs(sum(m["weight"] for m in members) - 1) < 1e-9
    assert all((ensemble / m["folder"] / "bundle.json").exists() for m in members)


def test_subword_bundles_tokenize_one_text_in_python_as_the_rust_tokenizer_does(offensive_run_dir, tmp_path):
    from tokenizers import Tokenizer

    bundle = export_bundle(offensive_run_dir, "cnn-kd", tmp_path / "cnn-kd")  # the tiny teacher's BERT tokenizer
    spec = files.read_json(bundle / "bundle.json")["encoder"]
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    single = bundle_loader._single_text_ids(bundle, tokenizer, spec["max_length"])
    assert single is not None and (bundle / "wordpiece.py").read_bytes() == export.WORDPIECE.read_bytes()
    assert all(single(text) == tokenizer.encode(text).ids for text in TEXTS)
    encode = bundle_loader.encoder(bundle, spec)
    assert all(np.array_equal(encode([text])[0], ids) for text, ids in zip(TEXTS, encode(TEXTS)))
    (bundle / "wordpiece.py").unlink()  # without it, the Rust tokenizer alone
    assert bundle_loader._single_text_ids(bundle, tokenizer, spec["max_length"]) is None


def test_bundle_py_prints_json(offensive_run_dir, tmp_path):
    bundle = export_bundle(offensive_run_dir, "tfidf-lr", tmp_path / "tfidf-lr")
    done = subprocess.run([sys.executable, "-I", str(bundle / "bundle.py"), TWEET, "what a lovely day"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    labels = files.read_json(bundle / "bundle.json")["label_names"]
    assert [row["text"] for row in rows] == [TWEET, "what a lovely day"]
    assert all(row["label"] in labels and abs(sum(row["probabilities"].values()) - 1) < 1e-5 for row in rows)


# -- bad input: one line, nothing written -------------------------------------------------------------------------

def fails(run_dir: Path, name: str, out: Path, *needles: str) -> str:
    with pytest.raises(BertdistillError) as caught:
        export_bundle(run_dir, name, out)
    message = str(caught.value)
    assert "\n" not in message and all(needle in message for needle in needles), message
    return message


def test_bad_run_dir_and_model_names(offensive_run_dir, tmp_path):
    out = tmp_path / "bundle"
    fails(tmp_path / "missing", "tfidf-lr", out, "no such run directory")
    (tmp_path / "empty").mkdir()
    fails(tmp_path / "empty", "tfidf-lr", out, "no config.json")
    fails(offensive_run_dir, "tfidf-nope", out, "tfidf-nope", "tfidf-lr", "minibert-kd-int8", "ensemble-greedy")
    for teacher in TEACHER_ROWS:
        fails(offensive_run_dir, teacher, out, "teacher", "tfidf-lr")
    assert not out.exists()


def test_empty_ensemble_is_refused(offensive_run_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("config.json", "dataset.json"):
        shutil.copy(offensive_run_dir / name, run_dir / name)
    files.write_json(run_dir / "ensembles" / "ensemble-greedy" / "bertdistill.json", {
        "format": ENSEMBLE_FORMAT, "version": files.FORMAT_VERSION, "kind": "ensemble", "task": "multiclass",
        "members": [], "name": "ensemble-greedy", "status": "empty", "reason": "no student fits the latency budget"})
    fails(run_dir, "ensemble-greedy", tmp_path / "bundle", "empty", "latency budget")
    assert not (tmp_path / "bundle").exists()


def test_existing_out_is_kept_and_failures_leave_nothing(offensive_run_dir, tmp_path, monkeypatch):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    fails(offensive_run_dir, "tfidf-lr", taken, "not an empty folder")
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert (export_bundle(offensive_run_dir, "tfidf-lr", tmp_path / "empty") / "bundle.py").exists()

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "model_card", broken)
    with pytest.raises(RuntimeError):
        export_bundle(offensive_run_dir, "tfidf-lr", tmp_path / "half")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "taken"]  # no bundle, no staging folder


def test_cli_export(offensive_run_dir, tmp_path, capsys):
    from bertdistill.cli import build_parser, main

    if "export" not in build_parser().format_help():
        pytest.skip("`bertdistill export` is not wired into the CLI yet")
    assert main(["export", str(offensive_run_dir), "--model", "static-kd", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "bundle.py").exists()
    capsys.readouterr()
    assert main(["export", str(offensive_run_dir), "--model", "nope", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "nope" in err[0] and not (tmp_path / "c").exists()


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_fasttext_bundle_hashes_and_scores_as_fasttext_does(tmp_path, task):
    """Character n-grams, word bigrams, unicode, NUL, a label-like token: the bundle's numpy fastText (hashing,
    buckets, one-vs-all lookup-table sigmoid) gives the library's probabilities."""
    dataset = make_multiclass() if task == "multiclass" else make_multilabel()
    student = FastTextLibStudent()
    student.task_, student.label_names_ = dataset.task, dataset.label_names
    student._write(tmp_path / "train.txt", dataset.train.texts, dataset.train.labels)
    student.model_ = train(tmp_path / "train.txt", 1, minn=3, maxn=5, wordNgrams=2, bucket=5000, dim=16, epoch=10,
                           loss="ova" if task == "multilabel" else "softmax", thread=1).model
    spec = {**write_fasttext(tmp_path, student), "label_names": dataset.label_names, "task": dataset.task}
    texts = TEXTS + ["__label__1 sneaky", "tab\there\x00nul", "日本語のテキスト"] + dataset.test.texts
    bundle, expected = bundle_loader.FastText(tmp_path, spec), student.predict_proba(texts)
    np.testing.assert_allclose(bundle.predict_proba(texts), expected, atol=1e-6)
    np.testing.assert_allclose(bundle.predict_proba(texts[::-1]), expected[::-1], atol=1e-6)  # from its token cache


def test_fasttext_multilabel_learns_from_rows_with_no_label(tmp_path):
    """fastText skips a training line without a label; most Jigsaw rows have none, and without them one-vs-all never
    sees a clean text. Here only `toxic` ever occurs: it must still be told apart from the rows without a label."""
    rng = np.random.default_rng(0)
    texts = [f"you are {rng.choice(['stupid', 'trash', 'garbage'])} {i}" for i in range(30)]
    texts += [f"have a {rng.choice(['nice', 'good', 'great'])} day {i}" for i in range(90)]
    labels = np.zeros((120, 3), dtype=np.int8)
    labels[:30, 0] = 1
    student = FastTextLibStudent()
    student.task_, student.label_names_ = "multilabel", ["toxic", "insult", "threat"]
    student._write(tmp_path / "train.txt", texts, labels)
    assert all(line.startswith("__label__") for line in (tmp_path / "train.txt").read_text().splitlines())
    # the default learning rate: with lr=0.5 this wheel ended in NaN on all 10 seeds once (AMD EPYC, 2026-11-29)
    student.model_ = train(tmp_path / "train.txt", 1, epoch=50, loss="ova", thread=1).model
    probs = student.predict_proba(["you are garbage", "have a good day"])
    assert probs.shape == (2, 3) and probs[0, 0] > 0.5 > probs[1, 0]


def test_fasttext_training_that_fails_diverges_or_hangs_is_retried_with_the_next_seed(tmp_path, monkeypatch):
    """The binding's training now and then ends in NaN, in huge weights, or hangs: `train` runs it in a child
    process under a time limit and retries with the next seed; after ATTEMPTS failures it says why in one error."""
    import fasttext

    from bertdistill.errors import BertdistillError
    from bertdistill.students import fasttext_lib

    class Model:
        def __init__(self, size):
            self.matrix = np.full((2, 2), size, dtype=np.float32)

        def get_input_matrix(self):
            return self.matrix

        def get_output_matrix(self):
            return self.matrix

    saved, seeds, limits = {}, [], []
    outcomes = [(3, "Encountered NaN."), "hang", Model(4e11), Model(np.nan), Model(0.5)]

    def run(command, timeout, **kwargs):  # the child: python -m ...fasttext_child SETTINGS OUT
        settings, out = json.loads(command[-2]), command[-1]
        seeds.append(settings["seed"])
        limits.append(timeout)
        outcome = outcomes.pop(0)
        if outcome == "hang":
            raise subprocess.TimeoutExpired(command, timeout)
        if isinstance(outcome, tuple):
            return subprocess.CompletedProcess(command, outcome[0], "", outcome[1])
        saved[out] = outcome
        Path(f"{out}.json").write_text('{"lr": 0.5}')
        return subprocess.CompletedProcess(command, 0, "", "Progress: 100.0% Trials:   12 Best score:  0.7")

    monkeypatch.setattr(fasttext_lib.subprocess, "run", run)
    monkeypatch.setattr(fasttext, "load_model", lambda path: saved[path])
    training = train(tmp_path / "t.txt", 7, autotuneDuration=5)
    assert training.model.matrix[0, 0] == 0.5 and seeds == [7, 8, 9, 10, 11]
    assert training.settings == {"lr": 0.5} and training.trials == 12
    assert set(limits) == {5 + fasttext_lib.FINAL_TRAINING_SECONDS}  # the training file is missing: 0 MB
    outcomes[:] = [Model(1e12)] * fasttext_lib.ATTEMPTS
    with pytest.raises(BertdistillError, match="10 times: weights diverged"):
        train(tmp_path / "t.txt", 7)
    outcomes[:] = ["hang"] * fasttext_lib.ATTEMPTS
    with pytest.raises(BertdistillError, match="10 times: training overran"):
        train(tmp_path / "t.txt", 7)
    outcomes[:] = [(1, "ValueError: cannot open file")]
    with pytest.raises(BertdistillError, match="cannot open file"):
        train(tmp_path / "t.txt", 7)


def test_fasttext_autotune_that_tried_few_settings_searches_again_and_keeps_the_best_on_val(multiclass_dataset,
                                                                                           monkeypatch):
    """Autotune is a timed search: when it ended after fewer than AUTOTUNE_MIN_TRIALS trials, it runs again with
    other seeds (at most AUTOTUNE_RUNS searches), and the model that scores best on val is kept, whichever search
    made it; a search with enough trials, or with no trial count to read, is not repeated."""
    from bertdistill.students import fasttext_lib
    from bertdistill.students.base import TrainingData

    data = multiclass_dataset
    right = {fasttext_lib.prepare(text): label for text, label in zip(data.val.texts, data.val.labels)}

    class Model:  # predicts the val label for a share of the val texts, class 0 for the rest
        labels = [f"__label__{i}" for i in range(len(data.label_names))]

        def __init__(self, share):
            self.share = share

        def predict(self, texts, k, threshold):
            ids = [right[text] if i < self.share * len(texts) else 0 for i, text in enumerate(texts)]
            return [[f"__label__{i}"] for i in ids], [np.array([1.0])] * len(texts)

    def search(outcomes):
        seeds = []

        def fake_train(path, seed, **settings):
            seeds.append(seed)
            share, trials = outcomes.pop(0)
            return fasttext_lib.Training(Model(share), {"lr": share}, trials)

        monkeypatch.setattr(fasttext_lib, "train", fake_train)
        student = FastTextLibStudent()
        student.fit(TrainingData(data.train.texts, data.train.labels, None, data.task, data.label_names, None),
                    data.val.texts, data.val.labels, Scorer.for_dataset(data, None, None))
        return student, seeds

    few = fasttext_lib.AUTOTUNE_MIN_TRIALS - 1
    student, seeds = search([(0.2, few), (1.0, few), (0.5, few)])
    assert seeds == [13, 13 + fasttext_lib.ATTEMPTS, 13 + 2 * fasttext_lib.ATTEMPTS] == [13, 23, 33]
    assert student.params_ == {"lr": 1.0, "autotune_trials": few, "autotune_searches": 3}
    assert student.val_score_ == 1.0
    student, seeds = search([(0.5, fasttext_lib.AUTOTUNE_MIN_TRIALS), (1.0, few)])
    assert seeds == [13] and student.params_["lr"] == 0.5
    student, seeds = search([(0.5, None), (1.0, few)])  # a build that prints no progress line: not repeated
    assert seeds == [13]


def test_fasttext_training_in_a_child_process_for_real(multiclass_dataset, tmp_path):
    """`train` with the real child process: a healthy model read back with the settings it was trained with (the
    learning rate too, which fastText's model file leaves out); a file fastText cannot read is one error."""
    from bertdistill.errors import BertdistillError
    from bertdistill.students.fasttext_lib import FastTextLibStudent, healthy

    student = FastTextLibStudent()
    student.task_ = multiclass_dataset.task
    student._write(tmp_path / "train.txt", multiclass_dataset.train.texts, multiclass_dataset.train.labels)
    model, settings, trials = train(tmp_path / "train.txt", 0, epoch=20, lr=0.3, wordNgrams=2, bucket=20_000, thread=1)
    assert healthy(model) and model.predict("pizza pasta dinner")[0][0] == "__label__1"
    assert settings["lr"] == 0.3 and model.f.getArgs().lr != 0.3  # read back from the model file: fastText's default
    assert settings["epoch"] == 20 and settings["loss"] == "softmax" and trials is None
    with pytest.raises(BertdistillError, match="fastText training failed: .*missing.txt"):
        train(tmp_path / "missing.txt", 0)
