"""Data loading: every supported layout, splits and subsampling, downloads, and row-precise errors on bad input."""
from __future__ import annotations

import functools
import http.server
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from bertdistill.config import DataConfig
from bertdistill.data import Split, load_dataset, stratified_split, subsample
from bertdistill.data import load as load_module
from bertdistill.errors import BertdistillError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# ---------------------------------------------------------------- helpers


def write_tweeteval(folder: Path, splits: dict[str, tuple[list[str], list[str]]],
                    mapping: list[str] | None = ("neg", "pos")) -> Path:
    """A TweetEval folder: `{split}_text.txt` / `{split}_labels.txt` (one row a line) and `mapping.txt`."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, (texts, labels) in splits.items():
        (folder / f"{split}_text.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        (folder / f"{split}_labels.txt").write_text("".join(f"{x}\n" for x in labels), encoding="utf-8")
    if mapping is not None:
        (folder / "mapping.txt").write_text("".join(f"{i}\t{n}\n" for i, n in enumerate(mapping)))
    return folder


def balanced(n: int, classes=("0", "1"), prefix="t") -> tuple[list[str], list[str]]:
    labels = [classes[i % len(classes)] for i in range(n)]
    return [f"{prefix}{i} text" for i in range(n)], labels


def write_csv(path: Path, header: list[str], rows: list[list], sep: str = ",") -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def cfg(path, **kwargs) -> DataConfig:
    return DataConfig(path=str(path), **kwargs)


def bad(config: DataConfig) -> str:
    """The message of the one BertdistillError that loading raises; it must be a single line."""
    with pytest.raises(BertdistillError) as caught:
        load_dataset(config)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture
def tiny_tweeteval(tmp_path) -> Path:
    texts = ["good day", "", "bad day", "fine", "  ", "awful", "great", "terrible"]
    labels = ["1", "0", "0", "1", "1", "0", "1", "0"]
    return write_tweeteval(tmp_path / "te", {
        "train": (texts, labels),
        "val": (["ok", ""], ["1", "0"]),
        "test": (["nice", "", "meh"], ["1", "0", "0"]),
    })


# ---------------------------------------------------------------- TweetEval


def test_tweeteval_keeps_empty_lines_aligned(tiny_tweeteval):
    data = load_dataset(cfg(tiny_tweeteval))
    assert data.task == "multiclass"
    assert data.label_names == ["neg", "pos"]
    assert data.summary()["rows"] == {"train": 8, "val": 2, "test": 3}
    assert data.train.texts == ["good day", "", "bad day", "fine", "  ", "awful", "great", "terrible"]
    assert data.train.labels.tolist() == [1, 0, 0, 1, 1, 0, 1, 0]
    assert data.train.labels.dtype == np.int64
    assert data.val.texts == ["ok", ""] and data.val.labels.tolist() == [1, 0]
    assert data.test.texts == ["nice", "", "meh"] and data.test.labels.tolist() == [1, 0, 0]


def test_tweeteval_crlf_and_unicode_line_separators(tmp_path):
    folder = tmp_path / "te"
    folder.mkdir()
    # U+2028 inside a tweet must not split it; \r\n endings are stripped
    (folder / "train_text.txt").write_bytes("a\u2028b\r\n\r\nc\r\nd\r\ne\r\nf\r\ng\r\nh\r\n".encode())
    (folder / "train_labels.txt").write_bytes(b"0\r\n1\r\n0\r\n1\r\n0\r\n1\r\n0\r\n1\r\n")
    data = load_dataset(cfg(folder, test_size=0.25, val_size=0.34))
    everything = data.train.texts + data.val.texts + data.test.texts
    assert sorted(everything) == sorted(["a\u2028b", "", "c", "d", "e", "f", "g", "h"])
    assert data.label_names == ["0", "1"]  # no mapping.txt: integer labels named by their value


def test_tweeteval_label_names_from_config_override_mapping(tiny_tweeteval):
    data = load_dataset(cfg(tiny_tweeteval, label_names=["no", "yes"]))
    assert data.label_names == ["no", "yes"]


def test_tweeteval_missing_splits_are_made_from_train(tmp_path):
    texts, labels = balanced(40)
    folder = write_tweeteval(tmp_path / "te", {"train": (texts, labels)})
    data = load_dataset(cfg(folder, test_size=0.25, val_size=0.2, seed=3))
    assert len(data.test) == 10 and len(data.val) == 6 and len(data.train) == 24
    assert sorted(data.train.texts + data.val.texts + data.test.texts) == sorted(texts)


@pytest.mark.skipif(not (SHARED / "tweeteval" / "hate").is_dir(), reason="shared data not present")
def test_real_tweeteval_hate_rows_and_empty_lines():
    folder = SHARED / "tweeteval" / "hate"
    data = load_dataset(cfg(folder))
    assert data.summary()["rows"] == {"train": 9000, "val": 1000, "test": 2970}
    assert data.label_names == ["not-hate", "hate"]
    assert sum(1 for t in data.train.texts if t == "") == 7
    # alignment: every text sits next to the label on the same line number
    texts = (folder / "train_text.txt").read_text(encoding="utf-8").split("\n")[:9000]
    labels = [int(x) for x in (folder / "train_labels.txt").read_text().split()]
    assert [t.removesuffix("\r") for t in texts] == data.train.texts
    assert data.train.labels.tolist() == labels
    assert set(np.unique(data.test.labels).tolist()) == {0, 1}


def test_real_tweeteval_hate_found_via_data_dir():
    if not (SHARED / "tweeteval" / "hate").is_dir():
        pytest.skip("shared data not present")
    data = load_dataset(DataConfig(path="tweeteval/hate", data_dir=str(SHARED), max_train=300, max_eval=100))
    assert data.summary()["rows"] == {"train": 300, "val": 100, "test": 100}


# ---------------------------------------------------------------- CSV / TSV / JSONL


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_table_string_labels_with_split_files(tmp_path, fmt):
    sep = "\t" if fmt == "tsv" else ","
    folder = tmp_path / "tab"
    header = ["id", "text", "label"]
    write_csv(folder / f"train.{fmt}", header,
              [[i, f"text, {i}" if i % 3 else f"text \"{i}\"", ["pos", "neg", "neutral"][i % 3]]
               for i in range(12)], sep)
    write_csv(folder / f"val.{fmt}", header, [[0, "v", "neg"], [1, "w", "pos"]], sep)
    write_csv(folder / f"test.{fmt}", header, [[0, "x", "neutral"], [1, "", "pos"]], sep)
    data = load_dataset(DataConfig(format=fmt, path=str(folder)))
    assert data.label_names == ["neg", "neutral", "pos"]  # sorted when not given
    assert data.summary()["rows"] == {"train": 12, "val": 2, "test": 2}
    assert data.train.texts[0] == 'text "0"' and data.train.texts[1] == "text, 1"
    assert data.train.labels.tolist()[:3] == [2, 0, 1]
    assert data.val.labels.tolist() == [0, 2]
    assert data.test.texts == ["x", ""] and data.test.labels.tolist() == [1, 2]


def test_table_label_names_order_from_config(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "train.csv", ["text", "label"], [["a", "pos"], ["b", "neg"], ["c", "pos"], ["d", "neg"]])
    write_csv(folder / "test.csv", ["text", "label"], [["e", "neg"], ["f", "pos"]])
    data = load_dataset(DataConfig(format="csv", path=str(folder), label_names=["pos", "neg"], val_size=0.5))
    assert data.label_names == ["pos", "neg"]
    assert data.test.labels.tolist() == [1, 0]


def test_class_named_none_is_not_a_missing_label(tmp_path):
    rows = [[f"t{i}", ["none", "against", "favor"][i % 3]] for i in range(18)]
    path = write_csv(tmp_path / "stance.csv", ["text", "label"], rows)
    data = load_dataset(DataConfig(format="csv", path=str(path), label_names=["none", "against", "favor"],
                                   test_size=0.34, val_size=0.34))
    assert data.label_names == ["none", "against", "favor"]
    every = np.concatenate([data.train.labels, data.val.labels, data.test.labels])
    assert np.bincount(every).tolist() == [6, 6, 6]


def test_table_integer_labels_with_names(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "train.csv", ["sentence", "y"], [[f"s{i}", i % 3] for i in range(9)])
    write_csv(folder / "val.csv", ["sentence", "y"], [["v", 2], ["w", 0]])
    write_csv(folder / "test.csv", ["sentence", "y"], [["x", 1]])
    data = load_dataset(DataConfig(format="csv", path=str(folder), text_column="sentence", label_column="y",
                                   label_names=["a", "b", "c"]))
    assert data.label_names == ["a", "b", "c"]
    assert data.train.labels.tolist() == [0, 1, 2] * 3
    assert data.val.labels.tolist() == [2, 0]


def test_table_integer_labels_without_names(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "train.csv", ["text", "label"], [[f"s{i}", [5, 7][i % 2]] for i in range(8)])
    write_csv(folder / "test.csv", ["text", "label"], [["x", 7], ["y", 5]])
    data = load_dataset(DataConfig(format="csv", path=str(folder), val_size=0.25))
    assert data.label_names == ["5", "7"]
    assert data.test.labels.tolist() == [1, 0]


def test_table_custom_file_names(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "a.csv", ["text", "label"], [[f"s{i}", i % 2] for i in range(10)])
    write_csv(folder / "b.csv", ["text", "label"], [["v", 0], ["w", 1]])
    write_csv(folder / "c.csv", ["text", "label"], [["x", 1]])
    data = load_dataset(DataConfig(format="csv", path=str(folder), train_file="a.csv", val_file="b.csv",
                                   test_file="c.csv"))
    assert data.summary()["rows"] == {"train": 10, "val": 2, "test": 1}


def test_jsonl_string_and_integer_labels(tmp_path):
    folder = tmp_path / "j"
    write_jsonl(folder / "train.jsonl", [{"text": f"t{i}", "label": ["x", "y"][i % 2], "n": i} for i in range(10)])
    write_jsonl(folder / "val.jsonl", [{"text": "v", "label": "y"}])
    write_jsonl(folder / "test.jsonl", [{"text": "w", "label": "x"}, {"text": "", "label": "y"}])
    data = load_dataset(DataConfig(format="jsonl", path=str(folder)))
    assert data.label_names == ["x", "y"]
    assert data.test.texts == ["w", ""] and data.test.labels.tolist() == [0, 1]

    folder = tmp_path / "k"
    write_jsonl(folder / "train.jsonl", [{"text": f"t{i}", "label": i % 2} for i in range(10)])
    write_jsonl(folder / "test.jsonl", [{"text": "w", "label": 1.0}])
    data = load_dataset(DataConfig(format="jsonl", path=str(folder), label_names=["no", "yes"]))
    assert data.label_names == ["no", "yes"] and data.test.labels.tolist() == [1]


def test_multilabel_columns(tmp_path):
    folder = tmp_path / "ml"
    header = ["id", "comment_text", "toxic", "insult", "threat"]
    rows = [[i, f"c {i}", i % 2, int(i % 3 == 0), int(i % 5 == 0)] for i in range(30)]
    write_csv(folder / "train.csv", header, rows)
    write_csv(folder / "test.csv", header, [[0, "x", 1, 0, 0], [1, "y", 0, 1, 1]])
    data = load_dataset(DataConfig(format="csv", path=str(folder), text_column="comment_text",
                                   label_columns=["toxic", "insult", "threat"], val_size=0.2, seed=1))
    assert data.task == "multilabel" and data.num_labels == 3
    assert data.label_names == ["toxic", "insult", "threat"]
    assert data.test.labels.dtype == np.int8 and data.test.labels.tolist() == [[1, 0, 0], [0, 1, 1]]
    assert data.train.labels.shape == (24, 3) and data.val.labels.shape == (6, 3)
    # rows keep their labels through the split
    by_text = {f"c {i}": [i % 2, int(i % 3 == 0), int(i % 5 == 0)] for i in range(30)}
    for split in (data.train, data.val):
        for text, row in zip(split.texts, split.labels.tolist()):
            assert by_text[text] == row


def test_multilabel_jsonl_booleans(tmp_path):
    records = [{"text": f"t{i}", "a": bool(i % 2), "b": i % 3 == 0} for i in range(12)]
    path = write_jsonl(tmp_path / "all.jsonl", records)
    data = load_dataset(DataConfig(format="jsonl", path=str(path), label_columns=["a", "b"], test_size=0.25,
                                   val_size=0.2))
    assert data.task == "multilabel"
    assert sum(map(len, (data.train, data.val, data.test))) == 12


@pytest.mark.skipif(not (SHARED / "jigsaw_toxic_comments").is_dir(), reason="shared data not present")
def test_real_jigsaw_multilabel():
    data = load_dataset(DataConfig(format="csv", path=str(SHARED / "jigsaw_toxic_comments"),
                                   text_column="comment_text", max_train=500,
                                   label_columns=["toxic", "severe_toxic", "obscene", "threat", "insult",
                                                  "identity_hate"]))
    assert data.task == "multilabel"
    assert len(data.test) == 2187 and data.test.labels.shape == (2187, 6)
    assert len(data.val) == 1080  # ceil(10% of 10,792)
    assert len(data.train) == 500


# ---------------------------------------------------------------- single file -> seeded stratified split


@pytest.fixture
def single_csv(tmp_path) -> tuple[Path, list[str]]:
    # 3 unbalanced classes: 60 / 30 / 10
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    rows = [[f"row {i}", label] for i, label in enumerate(labels)]
    return write_csv(tmp_path / "all.csv", ["text", "label"], rows), labels


def test_single_file_split_sizes_disjoint_stratified(single_csv):
    path, labels = single_csv
    data = load_dataset(DataConfig(format="csv", path=str(path), test_size=0.2, val_size=0.1, seed=7))
    assert len(data.test) == 20 and len(data.val) == 8 and len(data.train) == 72
    parts = [set(data.train.texts), set(data.val.texts), set(data.test.texts)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert set.union(*parts) == {f"row {i}" for i in range(100)}
    assert np.bincount(data.test.labels).tolist() == [12, 6, 2]  # stratified
    # labels stay with their rows
    truth = dict(zip((f"row {i}" for i in range(100)), labels))
    for split in (data.train, data.val, data.test):
        assert [data.label_names[i] for i in split.labels] == [truth[t] for t in split.texts]


def test_single_file_split_reproducible_by_seed(single_csv):
    path, _ = single_csv
    first = load_dataset(DataConfig(format="csv", path=str(path), seed=7))
    again = load_dataset(DataConfig(format="csv", path=str(path), seed=7))
    other = load_dataset(DataConfig(format="csv", path=str(path), seed=8))
    assert first.test.texts == again.test.texts and first.val.texts == again.val.texts
    assert first.test.texts != other.test.texts


def test_max_train_subsample_is_seeded_and_stratified(single_csv):
    path, _ = single_csv
    data = load_dataset(DataConfig(format="csv", path=str(path), max_train=36, max_eval=10, seed=7))
    full = load_dataset(DataConfig(format="csv", path=str(path), seed=7))
    again = load_dataset(DataConfig(format="csv", path=str(path), max_train=36, max_eval=10, seed=7))
    assert len(data.train) == 36 and len(data.val) == 8 and len(data.test) == 10
    assert set(data.train.texts) <= set(full.train.texts)
    assert data.train.texts == again.train.texts
    assert sorted(np.bincount(data.train.labels).tolist()) == [4, 11, 21]  # 60/30/10 scaled, all classes
    # a max larger than the split keeps it whole
    big = load_dataset(DataConfig(format="csv", path=str(path), max_train=10_000, seed=7))
    assert big.train.texts == full.train.texts


@pytest.mark.parametrize("n,size", [(25, 7), (41, 23), (39, 25), (100, 36)])
def test_subsample_gives_exactly_the_requested_rows(n, size):
    split = Split([str(i) for i in range(n)], np.arange(n) % 2)
    assert len(subsample(split, size, 0)) == size


def test_stratified_split_tiny_data_falls_back_or_names_the_key():
    # 4 classes, 20 rows, 10% held out = 2 rows: too few to stratify, still a valid split
    split = Split([str(i) for i in range(20)], np.repeat(np.arange(4), 5))
    rest, held = stratified_split(split, 0.1, 0)
    assert len(rest) == 18 and len(held) == 2
    assert len(subsample(split, 2, 0)) == 2
    with pytest.raises(BertdistillError, match="data.val_size"):
        stratified_split(Split(["a"], np.array([0])), 0.2, 0, "data.val_size")


def test_too_few_rows_to_split_is_an_error(tmp_path):
    path = write_csv(tmp_path / "two.csv", ["text", "label"], [["a", "x"], ["b", "y"]])
    message = bad(DataConfig(format="csv", path=str(path)))
    assert "data.val_size" in message and "too few rows" in message


# ---------------------------------------------------------------- Hugging Face save_to_disk folders


def test_hf_dataset_dict_from_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["ham", "spam"])})

    def part(n, offset=0):
        return datasets.Dataset.from_dict({"text": [f"m{offset + i}" for i in range(n)],
                                           "label": [i % 2 for i in range(n)]}, features=features)

    datasets.DatasetDict({"train": part(10), "validation": part(4, 100), "test": part(3, 200)}).save_to_disk(
        str(tmp_path / "hf"))
    data = load_dataset(DataConfig(format="hf", path=str(tmp_path / "hf")))
    assert data.label_names == ["ham", "spam"]
    assert data.summary()["rows"] == {"train": 10, "val": 4, "test": 3}
    assert data.test.texts == ["m200", "m201", "m202"] and data.test.labels.tolist() == [0, 1, 0]


def test_hf_single_dataset_multilabel_and_custom_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"body": [f"b{i}" for i in range(20)], "x": [i % 2 for i in range(20)],
                                "y": [int(i % 4 == 0) for i in range(20)]}).save_to_disk(str(tmp_path / "one"))
    data = load_dataset(DataConfig(format="hf", path=str(tmp_path / "one"), text_column="body",
                                   label_columns=["x", "y"], test_size=0.25, val_size=0.2))
    assert data.task == "multilabel" and data.label_names == ["x", "y"]
    assert sum(map(len, (data.train, data.val, data.test))) == 20

    datasets.DatasetDict({"tr": datasets.Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": ["p", "q"] * 2}),
                          "ev": datasets.Dataset.from_dict({"text": ["e"], "label": ["q"]})}).save_to_disk(
        str(tmp_path / "two"))
    data = load_dataset(DataConfig(format="hf", path=str(tmp_path / "two"), hf_splits={"train": "tr", "test": "ev"},
                                   val_size=0.5))
    assert data.label_names == ["p", "q"] and data.test.texts == ["e"] and data.test.labels.tolist() == [1]


def test_hf_errors_name_column_and_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"sentence": ["a", "b"], "label": [0, 1]})}
                         ).save_to_disk(str(tmp_path / "hf"))
    message = bad(DataConfig(format="hf", path=str(tmp_path / "hf")))
    assert "no column 'text'" in message and "sentence" in message and "[train]" in message
    message = bad(DataConfig(format="hf", path=str(tmp_path / "hf"), text_column="sentence",
                             hf_splits={"train": "nope"}))
    assert "no split 'nope'" in message and "train" in message


# ---------------------------------------------------------------- download


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    """Serves tmp_path/'served' on 127.0.0.1 from a thread; yields its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """No local copies anywhere: a fresh cwd (no ./data, ../shared/data), no data dir env, a tmp cache."""
    work = tmp_path / "cwd" / "inner"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv(load_module.DATA_DIR_ENV, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setattr(load_module, "CACHE_DIR", cache)
    return cache


def test_download_tweeteval_from_url(file_server, isolated):
    root, url = file_server
    texts, labels = balanced(10)
    texts[3] = ""
    write_tweeteval(root / "hate", {"train": (texts, labels), "val": (["v", ""], ["0", "1"]),
                                    "test": (["x"], ["1"])}, mapping=["not-hate", "hate"])
    config = DataConfig(path="mini/hate", download_url=f"{url}/hate/")
    data = load_dataset(config)
    assert data.label_names == ["not-hate", "hate"]
    assert data.train.texts == texts and data.val.texts == ["v", ""]
    assert (isolated / "data" / "mini" / "hate" / "train_text.txt").is_file()
    assert not (isolated / "data" / "mini" / "hate.partial").exists()
    # second time: the cached copy is used, nothing is fetched
    (root / "hate" / "train_text.txt").unlink()
    assert load_dataset(config).train.texts == texts


def test_download_csv_files_from_url(file_server, isolated):
    root, url = file_server
    write_csv(root / "t.csv", ["text", "label"], [[f"s{i}", i % 2] for i in range(10)])
    write_csv(root / "e.csv", ["text", "label"], [["x", 0]])
    data = load_dataset(DataConfig(format="csv", path="remote", download_url=url, train_file="t.csv",
                                   test_file="e.csv", val_size=0.2))
    assert len(data.test) == 1 and len(data.train) + len(data.val) == 10


def test_download_table_needs_file_names(file_server, isolated):
    _, url = file_server
    message = bad(DataConfig(format="csv", path="remote", download_url=url))
    assert "data.train_file" in message
    assert not (isolated / "data" / "remote").exists()


def test_download_missing_file_on_server(file_server, isolated):
    root, url = file_server
    (root / "mapping.txt").write_text("0\ta\n1\tb\n")
    message = bad(DataConfig(path="mini/gone", download_url=url))
    assert f"{url}/train_text.txt" in message and "failed" in message
    assert not (isolated / "data" / "mini" / "gone").exists()


def test_download_unreachable_url(isolated):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tweeteval/hate"
    message = bad(DataConfig(path="mini/hate", download_url=url))
    assert "'mini/hate' is not on this machine" in message
    assert f"downloading {url}/mapping.txt failed" in message
    assert "BERTDISTILL_DATA_DIR" in message
    assert not (isolated / "data" / "mini" / "hate").exists()


def test_not_found_without_url_lists_where_it_looked(isolated, tmp_path):
    message = bad(DataConfig(path="nowhere/hate", data_dir=str(tmp_path / "dd")))
    assert "dataset 'nowhere/hate' not found" in message
    assert str(tmp_path / "dd" / "nowhere" / "hate") in message and "BERTDISTILL_DATA_DIR" in message


def test_data_dir_from_environment(isolated, tmp_path, monkeypatch, tiny_tweeteval):
    monkeypatch.setenv(load_module.DATA_DIR_ENV, str(tiny_tweeteval.parent))
    assert len(load_dataset(DataConfig(path=tiny_tweeteval.name)).train) == 8


# ---------------------------------------------------------------- bad input: one error naming the place


def test_wrong_absolute_path(tmp_path):
    message = bad(cfg(tmp_path / "missing"))
    assert str(tmp_path / "missing") in message and "no such file" in message


def test_tweeteval_path_is_a_file(tmp_path):
    (tmp_path / "f.txt").write_text("x\n")
    assert "not a folder" in bad(cfg(tmp_path / "f.txt"))


def test_missing_text_column(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["tweet", "label"], [["a", "x"], ["b", "y"]] * 5)
    message = bad(DataConfig(format="csv", path=str(path)))
    assert str(path) in message and "no column 'text'" in message and "tweet, label" in message


def test_missing_label_column_multilabel(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "a", "b"], [["x", 0, 1]] * 5)
    message = bad(DataConfig(format="csv", path=str(path), label_columns=["a", "c"]))
    assert str(path) in message and "no column 'c'" in message


def test_missing_label_column_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "lab": 1}])
    assert "no column 'label'" in bad(DataConfig(format="jsonl", path=str(path)))


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "d.csv"
    path.write_text(content)
    message = bad(DataConfig(format="csv", path=str(path)))
    assert str(path) in message and "empty" in message


def test_header_only_file(tmp_path):
    path = write_csv(tmp_path / "d.tsv", ["text", "label"], [], sep="\t")
    message = bad(DataConfig(format="tsv", path=str(path)))
    assert str(path) in message and "no rows" in message


def test_empty_tweeteval_train(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": ([], []), "test": (["a"], ["0"])})
    message = bad(cfg(folder))
    assert "train_labels.txt" in message and "no rows" in message


def test_unparsable_jsonl_names_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": oops}\n')
    message = bad(DataConfig(format="jsonl", path=str(path)))
    assert str(path) in message and "JSONL" in message


@pytest.mark.parametrize("missing", ["", "NaN", "nan", "null"])
def test_missing_label_csv_names_row(tmp_path, missing):
    rows = [[f"t{i}", i % 2] for i in range(6)]
    rows[3][1] = missing
    path = write_csv(tmp_path / "d.csv", ["text", "label"], rows)
    message = bad(DataConfig(format="csv", path=str(path)))
    assert f"{path}, row 5: missing label" == message  # header is row 1, data row index 3 -> row 5


def test_missing_label_in_test_split(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "train.csv", ["text", "label"], [[f"t{i}", i % 2] for i in range(6)])
    write_csv(folder / "test.csv", ["text", "label"], [["x", 1], ["y", ""]])
    message = bad(DataConfig(format="csv", path=str(folder)))
    assert str(folder / "test.csv") in message and "row 3" in message and "missing label" in message


def test_missing_label_jsonl_names_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": None},
                                              {"text": "c", "label": "y"}])
    assert bad(DataConfig(format="jsonl", path=str(path))) == f"{path}, line 2: missing label"


def test_missing_text_jsonl_names_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": "x"}, {"label": "y"}])
    message = bad(DataConfig(format="jsonl", path=str(path)))
    assert message.startswith(f"{path}, line 2: column 'text' has no text")


def test_missing_label_tweeteval_names_line(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b", "c"], ["0", "", "1"])})
    assert bad(cfg(folder)) == f"{folder / 'train_labels.txt'}, line 2: missing label"


def test_unknown_label_not_in_label_names(tmp_path):
    rows = [["a", "pos"], ["b", "neg"], ["c", "neutral"], ["d", "pos"]]
    path = write_csv(tmp_path / "d.csv", ["text", "label"], rows)
    message = bad(DataConfig(format="csv", path=str(path), label_names=["neg", "pos"]))
    assert message.startswith(f"{path}, row 4: unknown label 'neutral'") and "neg, pos" in message


def test_unknown_integer_label_beyond_mapping(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b", "c"], ["0", "1", "2"])})
    message = bad(cfg(folder))
    assert message.startswith(f"{folder / 'train_labels.txt'}, line 3: unknown label '2'")


def test_unknown_string_label_in_test(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "train.csv", ["text", "label"], [[f"t{i}", ["x", "y"][i % 2]] for i in range(6)])
    write_csv(folder / "test.csv", ["text", "label"], [["a", "x"], ["b", "z"]])
    message = bad(DataConfig(format="csv", path=str(folder)))
    assert message.startswith(f"{folder / 'test.csv'}, row 3: unknown label 'z'")


def test_single_class_in_train(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b", "c"], ["1", "1", "1"]),
                                               "test": (["d"], ["1"])})
    message = bad(cfg(folder))
    assert str(folder / "train_labels.txt") in message and "single class ('pos')" in message


def test_constant_multilabel_column_in_train(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "a", "b"], [[f"t{i}", i % 2, 0] for i in range(10)])
    message = bad(DataConfig(format="csv", path=str(path), label_columns=["a", "b"]))
    assert str(path) in message and "column 'b' is constant" in message


def test_multilabel_value_not_binary(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "a", "b"], [["t", 0, 1], ["u", 1, 2], ["v", 1, 0]])
    message = bad(DataConfig(format="csv", path=str(path), label_columns=["a", "b"]))
    assert message == f"{path}, row 3: column 'b' must be 0 or 1, got '2'"


def test_multilabel_missing_value(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "a", "b"], [["t", 0, 1], ["u", "", 0], ["v", 1, 0]])
    message = bad(DataConfig(format="csv", path=str(path), label_columns=["a", "b"]))
    assert message.startswith(f"{path}, row 3: column 'a'")


def test_non_utf8_bytes_name_the_line(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b", "c", "d"], ["0", "1", "0", "1"])})
    (folder / "train_text.txt").write_bytes(b"a\nb\ncaf\xe9\nd\n")
    message = bad(cfg(folder))
    assert message.startswith(f"{folder / 'train_text.txt'}, line 3: not valid UTF-8 (byte 0xe9)")


def test_non_utf8_csv(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\nok,1\nfine,0\n\xff\xfe,1\n")
    message = bad(DataConfig(format="csv", path=str(path)))
    assert message.startswith(f"{path}, line 4: not valid UTF-8")


def test_text_label_line_count_mismatch(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b", "c"], ["0", "1"])})
    message = bad(cfg(folder))
    assert str(folder / "train_text.txt") in message and "3 lines" in message
    assert str(folder / "train_labels.txt") in message and "has 2" in message


def test_text_without_label_file(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b"], ["0", "1"])})
    (folder / "val_text.txt").write_text("x\n")
    message = bad(cfg(folder))
    assert str(folder / "val_labels.txt") in message and "not found" in message


def test_test_label_never_seen_in_train(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b", "c"], ["0", "1", "0"]),
                                               "test": (["d", "e"], ["1", "2"])}, mapping=["x", "y", "z"])
    message = bad(cfg(folder))
    assert message.startswith(f"{folder / 'test_labels.txt'}, line 2: test label '2' never appears in train")


def test_val_label_in_names_but_not_in_train(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "train.csv", ["text", "label"], [["a", "x"], ["b", "y"], ["c", "x"]])
    write_csv(folder / "val.csv", ["text", "label"], [["d", "z"]])
    message = bad(DataConfig(format="csv", path=str(folder), label_names=["x", "y", "z"]))
    assert message.startswith(f"{folder / 'val.csv'}, row 2: val label 'z' never appears in train")


def test_bad_mapping_file(tmp_path):
    folder = write_tweeteval(tmp_path / "te", {"train": (["a", "b"], ["0", "1"])}, mapping=None)
    (folder / "mapping.txt").write_text("0\tneg\npos\n")
    assert bad(cfg(folder)).startswith(f"{folder / 'mapping.txt'}, line 2: expected 'id<TAB>name'")


def test_configured_split_file_missing(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "train.csv", ["text", "label"], [["a", 0], ["b", 1]])
    message = bad(DataConfig(format="csv", path=str(folder), test_file="nope.csv"))
    assert str(folder / "nope.csv") in message and "data.test_file" in message


def test_folder_without_train_file(tmp_path):
    folder = tmp_path / "tab"
    write_csv(folder / "test.csv", ["text", "label"], [["a", 0], ["b", 1]])
    assert "no train split" in bad(DataConfig(format="csv", path=str(folder)))


def test_unreadable_file(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["a", 0], ["b", 1]])

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert bad(DataConfig(format="csv", path=str(path))) == f"{path}: cannot read (Permission denied)"


def test_csv_row_with_too_few_fields_is_a_missing_label(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,1\nb\nc,0\n")
    assert bad(DataConfig(format="csv", path=str(path))) == f"{path}, row 3: missing label"


def test_csv_row_with_too_many_fields_names_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,1\nb,0,9\nc,0\n")
    message = bad(DataConfig(format="csv", path=str(path)))
    assert message.startswith(f"{path}: cannot parse as CSV") and "line 3" in message


def test_subsample_that_loses_a_class_from_train_is_an_error(tmp_path):
    texts = [f"t{i}" for i in range(60)]
    labels = ["0"] * 57 + ["1"] * 3  # the rare class cannot survive a 4-row train subsample
    folder = write_tweeteval(tmp_path / "te", {"train": (texts, labels), "test": (["x", "y"], ["0", "1"])})
    with pytest.raises(BertdistillError, match="train has no examples to learn 'pos'.*data.max_train"):
        load_dataset(cfg(folder, max_train=4, val_size=0.1))
