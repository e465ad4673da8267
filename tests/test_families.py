"""Every supported teacher family end to end: a tiny random model of each (built from its config class, with a
small BPE tokenizer that has the family's special tokens) is fine-tuned, labels, teaches the students that depend
on its family (its labels, its tokenizer, its layers in the mini-transformer and its int8 export), is exported to
ONNX (fp32 and int8 rows), evaluated, and serves one request. An architecture the adapters do not know fails when
the run is prepared."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import make_multiclass
from fastapi.testclient import TestClient
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    GPT2Config,
    MPNetConfig,
    PreTrainedTokenizerFast,
    RobertaConfig,
)

from bertdistill.cli import main
from bertdistill.teacher import backbones

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
BERT_TOKENS = dict(cls="[CLS]", sep="[SEP]", pad="[PAD]", unk="[UNK]", mask="[MASK]")
ROBERTA_TOKENS = dict(cls="<s>", sep="</s>", pad="<pad>", unk="<unk>", mask="<mask>")
FAMILIES = {  # model_type: (config class, its settings, special tokens in id order)
    "bert": (BertConfig, SMALL, BERT_TOKENS),
    "mpnet": (MPNetConfig, SMALL, ROBERTA_TOKENS),
    "roberta": (RobertaConfig, SMALL, ROBERTA_TOKENS),
    "deberta-v2": (DebertaV2Config, {**SMALL, "relative_attention": True, "position_buckets": 16,
                                     "pos_att_type": ["p2c", "c2p"], "position_biased_input": False},
                   BERT_TOKENS),
    "distilbert": (DistilBertConfig, dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64), BERT_TOKENS),
    "electra": (ElectraConfig, {**SMALL, "embedding_size": 16}, BERT_TOKENS),
}
# what depends on the teacher's family: its labels (tfidf-soft-lr), its tokenizer (cnn-kd), its layers (minibert-kd)
STUDENTS = ["tfidf-soft-lr", "cnn-kd", "minibert-kd", "minibert-kd-int8"]


def tiny_tokenizer(texts: list[str], tokens: dict[str, str]) -> PreTrainedTokenizerFast:
    """A BPE tokenizer trained on `texts` whose special tokens (and their ids) are the family's."""
    order = ["cls", "pad", "sep", "unk", "mask"] if tokens["cls"] == "<s>" else ["pad", "unk", "cls", "sep", "mask"]
    special = [tokens[name] for name in order]
    tokenizer = Tokenizer(models.BPE(unk_token=tokens["unk"]))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=special))
    cls, sep = tokens["cls"], tokens["sep"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B {sep}",
        special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, cls_token=cls, sep_token=sep, pad_token=tokens["pad"],
                                   unk_token=tokens["unk"], mask_token=tokens["mask"], bos_token=cls, eos_token=sep,
                                   model_max_length=64)


def tiny_model_dir(folder: Path, model_type: str, texts: list[str]) -> Path:
    config_class, settings, tokens = FAMILIES[model_type]
    tokenizer = tiny_tokenizer(texts, tokens)
    config = config_class(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                          max_position_embeddings=80, **settings)
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).base_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_dataset(folder: Path) -> Path:
    dataset = make_multiclass(n_per_class=30)
    for split in ("train", "val", "test"):
        part = dataset.split(split)
        rows = ["text,label"] + [f'"{t}",{dataset.label_names[y]}' for t, y in zip(part.texts, part.labels)]
        (folder / f"{split}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def run_config(folder: Path, data: Path, backbone: Path) -> Path:
    include = ", ".join(f'"{s}"' for s in STUDENTS)
    path = folder / "run.toml"
    path.write_text(f"""name = "family"
[data]
format = "csv"
path = "{data}"
train_file = "train.csv"
val_file = "val.csv"
test_file = "test.csv"
[teacher]
backbone = "{backbone}"
epochs = 1
max_length = 32
learning_rate = 1e-3
[students]
include = [{include}]
trials = 1
[students.neural]
epochs = 1
transformer_layers = 1
[eval]
latency_texts = 10
warmup = 2
throughput_texts = 20
""", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("family-data"))


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_every_family_teaches_every_student_end_to_end(model_type, data_dir, tmp_path):
    texts = [line.split('"')[1] for line in (data_dir / "train.csv").read_text().splitlines()[1:]]
    backbone = tiny_model_dir(tmp_path / model_type, model_type, texts)
    assert backbones.read_config(backbone)["model_type"] == model_type
    out = tmp_path / "run"
    assert main(["run", str(run_config(tmp_path, data_dir, backbone)), "--out", str(out)]) == 0
    entries = {e["name"]: e for e in json.loads((out / "leaderboard.json").read_text())}
    assert {"teacher", "teacher-onnx", "teacher-onnx-int8", *STUDENTS} <= set(entries)
    assert entries["teacher-onnx"]["fidelity"]["agreement"] == 1.0  # the fp32 export is the same model
    fused = json.loads((out / "teacher" / "onnx-fp32" / "bertdistill.json").read_text())["export"]["fused"]
    assert bool(fused) == (backbones.FAMILIES[model_type].ort_model_type is not None)
    student = json.loads((out / "students" / "minibert-kd" / "bertdistill.json").read_text())
    assert student["arch"]["model_config"]["model_type"] == model_type
    from bertdistill.serve import Catalog, create_app

    with TestClient(create_app(Catalog.load(out))) as client:
        answer = client.post("/api/predict", json={"text": "a text to classify"})
    assert answer.status_code == 200, answer.text


def test_minitransformer_copies_the_chosen_layers_exactly(data_dir, tmp_path):
    """The student's layer i is the source's layer layers[i], embeddings are the kept rows, nothing is left
    random but the head; RoBERTa-style position tables are shifted to the student's padding id."""
    texts = [line.split('"')[1] for line in (data_dir / "train.csv").read_text().splitlines()[1:]]
    source = tiny_model_dir(tmp_path / "roberta", "roberta", texts)
    kept = torch.tensor([1, 3, 0, 2, 10, 11, 12])  # pad, unk, then others: the student's pad id is 0
    config = backbones.student_config(source, 1, len(kept), 0, 3)
    model = backbones.build(config)
    fresh = backbones.copy_layers(model, source, [1], kept.numpy())
    assert all(not key.startswith("roberta.") for key in fresh) and fresh
    tensors = backbones.checkpoint_tensors(source)
    state = model.state_dict()
    torch.testing.assert_close(state["roberta.encoder.layer.0.attention.self.query.weight"],
                               tensors["encoder.layer.1.attention.self.query.weight"])
    torch.testing.assert_close(state["roberta.embeddings.word_embeddings.weight"],
                               tensors["embeddings.word_embeddings.weight"][kept])
    torch.testing.assert_close(state["roberta.embeddings.position_embeddings.weight"],
                               tensors["embeddings.position_embeddings.weight"][1:])  # pad 1 -> 0


def test_layers_beyond_the_source_depth_are_refused(tiny_bert_dir):
    with pytest.raises(Exception, match="3 layers asked of a model with 2"):
        backbones.student_config(tiny_bert_dir, 3, 10, 0, 2)


def test_an_unsupported_architecture_fails_when_the_run_is_prepared(data_dir, tmp_path, capsys):
    folder = tmp_path / "gpt2"
    GPT2Config(n_embd=32, n_layer=1, n_head=2).save_pretrained(folder)
    tiny_tokenizer(["a b c"], BERT_TOKENS).save_pretrained(folder)
    out = tmp_path / "run"
    assert main(["run", str(run_config(tmp_path, data_dir, folder)), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "architecture 'gpt2' is not supported; supported families: bert, electra, roberta" in error
    assert not out.exists()  # refused before anything was written


def test_a_bin_checkpoint_loads_only_as_weights_and_converts_to_safetensors(tiny_bert_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file

    folder = tmp_path / "bin"
    shutil.copytree(tiny_bert_dir, folder)
    expected = load_file(str(folder / "model.safetensors"))
    torch.save(expected, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    torch.testing.assert_close(backbones.checkpoint_tensors(folder), expected)
    backbones.to_safetensors(folder)
    assert not list(folder.glob("*.bin"))
    torch.testing.assert_close(load_file(str(folder / "model.safetensors")), expected)


def test_sharded_safetensors_load_whole(tiny_bert_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tiny_bert_dir / "model.safetensors"))
    names = sorted(tensors)
    folder = tmp_path / "sharded"
    folder.mkdir()
    save_file({n: tensors[n] for n in names[:10]}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({n: tensors[n] for n in names[10:]}, str(folder / "model-00002-of-00002.safetensors"))
    torch.testing.assert_close(backbones.checkpoint_tensors(folder), tensors)


def test_a_sharded_teacher_is_fingerprinted_by_all_its_shards(tiny_bert_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from bertdistill.labels.soft_labels import teacher_fingerprint

    folder = tmp_path / "sharded"
    shutil.copytree(tiny_bert_dir, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    single = teacher_fingerprint(folder)
    (folder / "model.safetensors").unlink()
    names = sorted(tensors)
    save_file({n: tensors[n] for n in names[:10]}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({n: tensors[n] for n in names[10:]}, str(folder / "model-00002-of-00002.safetensors"))
    first = teacher_fingerprint(folder)
    save_file({n: tensors[n] * 2 for n in names[10:]}, str(folder / "model-00002-of-00002.safetensors"))
    assert len({single, first, teacher_fingerprint(folder)}) == 3  # the second shard counts too
