"""Bad input through the CLI: exit status 2, one line on stderr naming the problem, no traceback, no run directory.

Everything here must fail while validating, before any model is loaded or trained: the `no_work` fixture turns
any attempt to load a tokenizer or create the run directory into a test failure.
"""
from __future__ import annotations

import csv
import socket
from pathlib import Path

import pytest

from bertdistill import pipeline
from bertdistill.cli import main
from bertdistill.data import load as load_module


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("bad input must be rejected before loading a model or creating the run directory")

    monkeypatch.setattr(pipeline, "load_tokenizer", forbidden)
    monkeypatch.setattr(pipeline, "start", forbidden)
    monkeypatch.setattr(pipeline, "fine_tune", forbidden)


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """A cwd with no ./data or ../shared/data, no data-dir variable, a tmp download cache."""
    work = tmp_path / "cwd" / "inner"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv(load_module.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(load_module, "CACHE_DIR", tmp_path / "cache")
    return work


def fails(capsys, tmp_path, argv: list[str], *needles: str) -> str:
    """Run the CLI; assert the contract for bad input and that the message contains every needle."""
    out = tmp_path / "run"
    rc = main([*argv, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("bertdistill: error: ")
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    assert not out.exists()
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def write_config(tmp_path: Path, data: dict, extra: str = "") -> Path:
    body = "\n".join(f"{key} = {_toml(value)}" for key, value in data.items())
    path = tmp_path / "config.toml"
    path.write_text(f'name = "bad"\n\n[data]\n{body}\n{extra}', encoding="utf-8")
    return path


def _toml(value) -> str:
    if isinstance(value, (Path, str)):
        return "'" + str(value) + "'"  # literal string: no escapes in paths
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_tweeteval(folder: Path, splits: dict[str, tuple[list[str], list[str]]],
                    mapping=("neg", "pos")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, (texts, labels) in splits.items():
        (folder / f"{split}_text.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        (folder / f"{split}_labels.txt").write_text("".join(f"{x}\n" for x in labels), encoding="utf-8")
    (folder / "mapping.txt").write_text("".join(f"{i}\t{n}\n" for i, n in enumerate(mapping)))
    return folder


GOOD_ROWS = [[f"text {i}", ["neg", "pos"][i % 2]] for i in range(20)]


# ---------------------------------------------------------------- data problems


@pytest.mark.parametrize("command", ["run", "teacher", "label", "students", "evaluate", "report"])
def test_wrong_path(tmp_path, capsys, command):
    missing = tmp_path / "nope.csv"
    config = write_config(tmp_path, {"format": "csv", "path": missing})
    fails(capsys, tmp_path, [command, str(config)], str(missing), "no such file")


def test_relative_dataset_not_found(tmp_path, capsys, isolated):
    config = write_config(tmp_path, {"format": "tweeteval", "path": "nowhere/hate"})
    fails(capsys, tmp_path, ["run", str(config)], "dataset 'nowhere/hate' not found", "BERTDISTILL_DATA_DIR")


def test_download_unreachable(tmp_path, capsys, isolated):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hate"
    config = write_config(tmp_path, {"format": "tweeteval", "path": "nowhere/hate", "download_url": url})
    fails(capsys, tmp_path, ["run", str(config)], f"downloading {url}/mapping.txt failed")


def test_missing_column(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["tweet", "label"], GOOD_ROWS)
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config)], str(data), "no column 'text'", "tweet, label")


def test_unknown_label_column_via_set(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], GOOD_ROWS)
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config), "--set", "data.label_column=sentiment"],
          str(data), "no column 'sentiment'")


def test_unknown_multilabel_column(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "toxic", "insult"], [[f"t{i}", i % 2, 1 - i % 2] for i in range(9)])
    config = write_config(tmp_path, {"format": "csv", "path": data, "label_columns": ["toxic", "threat"]})
    fails(capsys, tmp_path, ["run", str(config)], str(data), "no column 'threat'")


def test_empty_file(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("")
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config)], str(data), "file is empty")


def test_header_only_file(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], [])
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config)], str(data), "no rows")


@pytest.mark.parametrize("missing", ["", "NaN"])
def test_missing_label(tmp_path, capsys, missing):
    rows = [list(r) for r in GOOD_ROWS]
    rows[6][1] = missing
    data = write_csv(tmp_path / "d.csv", ["text", "label"], rows)
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config)], f"{data}, row 8: missing label")


def test_missing_label_jsonl(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n{"text": "c", "label": "y"}\n')
    config = write_config(tmp_path, {"format": "jsonl", "path": data})
    fails(capsys, tmp_path, ["run", str(config)], f"{data}, line 2: missing label")


def test_unknown_label(tmp_path, capsys):
    rows = [list(r) for r in GOOD_ROWS]
    rows[4][1] = "neutral"
    data = write_csv(tmp_path / "d.csv", ["text", "label"], rows)
    config = write_config(tmp_path, {"format": "csv", "path": data, "label_names": ["neg", "pos"]})
    fails(capsys, tmp_path, ["run", str(config)], f"{data}, row 6: unknown label 'neutral'", "known: neg, pos")


def test_single_class_in_train(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], [[f"t{i}", "pos"] for i in range(10)])
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config)], str(data), "single class ('pos')")


def test_non_utf8_bytes(tmp_path, capsys):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b", "c", "d"], ["0", "1", "0", "1"])})
    (folder / "train_text.txt").write_bytes(b"a\nb\nc\nd \x96 e\n")
    config = write_config(tmp_path, {"format": "tweeteval", "path": folder})
    fails(capsys, tmp_path, ["run", str(config)], f"{folder / 'train_text.txt'}, line 4: not valid UTF-8")


def test_line_count_mismatch(tmp_path, capsys):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "", "c", "d"], ["0", "1", "0", "1"]),
                                               "val": (["x", "y"], ["0", "1", "1"])})
    config = write_config(tmp_path, {"format": "tweeteval", "path": folder})
    fails(capsys, tmp_path, ["run", str(config)], str(folder / "val_text.txt"), "2 lines",
          str(folder / "val_labels.txt"), "has 3")


def test_test_label_never_seen_in_train(tmp_path, capsys):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b", "c", "d"], ["0", "1", "0", "1"]),
                                               "test": (["x", "y", "z"], ["0", "2", "1"])},
                             mapping=("anger", "joy", "sadness"))
    config = write_config(tmp_path, {"format": "tweeteval", "path": folder})
    fails(capsys, tmp_path, ["run", str(config)],
          f"{folder / 'test_labels.txt'}, line 2: test label '2' never appears in train")


def test_bad_data_in_data_dir_copy(tmp_path, capsys):
    # a built-in config resolved against --data-dir: the copy found there is the one checked
    write_tweeteval(tmp_path / "dd" / "tweeteval" / "hate", {"train": (["a", "b"], ["0"])})
    fails(capsys, tmp_path, ["run", "tweeteval-hate", "--data-dir", str(tmp_path / "dd")],
          str(tmp_path / "dd" / "tweeteval" / "hate" / "train_text.txt"))


def test_too_few_rows_to_split(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], [["a", "x"], ["b", "y"]])
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config)], "data.val_size", "too few rows")


# ---------------------------------------------------------------- config problems


def test_config_key_does_not_exist_in_file(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], GOOD_ROWS)
    config = write_config(tmp_path, {"format": "csv", "path": data}, "\n[teacher]\nepoch = 1\n")
    fails(capsys, tmp_path, ["run", str(config)], str(config),
          "unknown config key 'teacher.epoch' (did you mean 'epochs'?)")


def test_config_key_does_not_exist_via_set(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], GOOD_ROWS)
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config), "--set", "data.text_colum=body"],
          "unknown config key 'data.text_colum' (did you mean 'text_column'?)")


def test_invalid_config_value(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], GOOD_ROWS)
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["teacher", str(config), "--set", "teacher.epochs=0"],
          "config key 'teacher.epochs'", "(got 0)")


def test_invalid_format(tmp_path, capsys):
    config = write_config(tmp_path, {"format": "xlsx", "path": tmp_path / "d.xlsx"})
    fails(capsys, tmp_path, ["run", str(config)], "config key 'data.format'", "'xlsx'")


def test_malformed_override(tmp_path, capsys):
    config = write_config(tmp_path, {"format": "csv", "path": tmp_path / "d.csv"})
    fails(capsys, tmp_path, ["run", str(config), "--set", "teacher.epochs"], "override 'teacher.epochs'")


def test_invalid_toml(tmp_path, capsys):
    config = tmp_path / "broken.toml"
    config.write_text("[data\npath = 'x'\n")
    fails(capsys, tmp_path, ["run", str(config)], str(config), "not valid TOML")


def test_config_file_not_found(tmp_path, capsys):
    fails(capsys, tmp_path, ["run", str(tmp_path / "missing.toml")], "missing.toml", "not found")


def test_stage_without_config_or_run_dir(tmp_path, capsys):
    fails(capsys, tmp_path, ["students"], "give a CONFIG")


def test_unknown_student(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], GOOD_ROWS)
    config = write_config(tmp_path, {"format": "csv", "path": data})
    fails(capsys, tmp_path, ["run", str(config), "--set", "students.include=['tfidf-lr', 'nope']"],
          "unknown student 'nope'")


def test_unknown_metric_class(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["text", "label"], GOOD_ROWS)
    config = write_config(tmp_path, {"format": "csv", "path": data, "metric": "class_f1",
                                     "metric_classes": ["irony"]})
    fails(capsys, tmp_path, ["run", str(config)], "data.metric_classes", "no class 'irony'", "neg, pos")


def test_configs_command_lists_builtins(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    assert "tweeteval-hate\t" in out and "jigsaw-toxic\t" in out
