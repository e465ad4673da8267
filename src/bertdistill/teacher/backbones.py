"""Backbone adapters: what the rest of the package needs to know about an encoder family, in one table.

Nothing outside this module names `.bert.`, `encoder.layer` or a checkpoint file. For each supported family it
gives where the encoder layers are, the config key of their count, the ONNX Runtime optimizer `model_type` (None:
no fusion is tried), and whether position ids start after the padding id (RoBERTa-style; a student with another
padding id gets the position table shifted to match). Input embeddings and special tokens come from the
generic Hugging Face API (`get_input_embeddings`, `all_special_ids`).

A new teacher family is one `FAMILIES` entry; `check` makes an unknown one an error when a run is prepared.
Checkpoints load in any layout: single or sharded safetensors, or a PyTorch `.bin` through
`torch.load(weights_only=True)` only (a teacher adopted into a run is converted to safetensors once).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bertdistill.errors import BertdistillError


@dataclass(frozen=True)
class Family:
    layers: str  # the encoder's layer list inside the base model
    depth_key: str  # the config key of the number of layers
    ort_model_type: str | None  # onnxruntime.transformers optimizer model_type; None: keep the plain graph
    positions_after_pad: bool = False  # position id of token t is pad_token_id + 1 + t (RoBERTa, MPNet)


BERT_LIKE = Family("encoder.layer", "num_hidden_layers", "bert")
FAMILIES = {
    "bert": BERT_LIKE,
    "electra": BERT_LIKE,
    "roberta": Family("encoder.layer", "num_hidden_layers", "bert", positions_after_pad=True),
    "xlm-roberta": Family("encoder.layer", "num_hidden_layers", "bert", positions_after_pad=True),
    # MPNet's relative position bias is not a pattern ONNX Runtime fuses (measured: no Attention op)
    "mpnet": Family("encoder.layer", "num_hidden_layers", None, positions_after_pad=True),
    "deberta-v2": Family("encoder.layer", "num_hidden_layers", None),
    "distilbert": Family("transformer.layer", "n_layers", "bert"),
}


def read_config(source: Path | str) -> dict:
    """The config.json of a model folder (or of a hub name, through the Hugging Face cache) as a dict."""
    path = Path(source) / "config.json"
    if not path.exists() and not Path(source).exists():
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(str(source)).to_dict()
        except (OSError, ValueError) as err:
            raise BertdistillError(f"model '{source}': cannot read its config ({str(err).splitlines()[0]})") from None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BertdistillError(f"{path}: cannot read the model config ({err})") from None


def family(model_type: str | None, origin: str = "model") -> Family:
    """The adapter of `model_type`, or an error that names the supported families."""
    if model_type not in FAMILIES:
        raise BertdistillError(f"{origin}: architecture {model_type!r} is not supported; supported families: "
                               f"{', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def check(folder: Path | str, origin: str) -> Family:
    """Fail early (a run is prepared) if the model in `folder` is of a family the adapters do not know."""
    return family(read_config(folder).get("model_type"), origin)


def width(config: dict) -> int:
    """The encoder's hidden size (the width of its output vectors)."""
    return int(config.get("hidden_size") or config["dim"])


def depth(config: dict) -> int:
    return int(config[family(config.get("model_type")).depth_key])


def checkpoint_tensors(folder: Path | str, suffix: str = "") -> dict:
    """The weights of a checkpoint folder whose names end with `suffix` (all by default), floats as float32
    torch tensors, whatever the layout."""
    import torch
    from safetensors import safe_open

    folder = Path(folder)
    tensors = {}
    files = [f for f in sorted(folder.glob("*.safetensors")) if not f.name.startswith("optimizer")]
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            tensors.update({name: handle.get_tensor(name) for name in handle.keys() if name.endswith(suffix)})
    if not files:
        bins = sorted(folder.glob("pytorch_model*.bin"))
        if not bins:
            raise BertdistillError(f"{folder}: no weights (model*.safetensors or pytorch_model*.bin)")
        for file in bins:
            state = torch.load(file, map_location="cpu", weights_only=True)
            tensors.update({name: t for name, t in state.items() if name.endswith(suffix)})
    return {name: t.float() if t.is_floating_point() else t for name, t in tensors.items()}


def to_safetensors(folder: Path) -> None:
    """Rewrite a `.bin` checkpoint in `folder` as model.safetensors (once; safetensors folders are untouched)."""
    from safetensors.torch import save_file

    bins = sorted(folder.glob("pytorch_model*.bin"))
    if not bins or any(folder.glob("*.safetensors")):
        return
    tensors = {name: t.contiguous() for name, t in checkpoint_tensors(folder).items()}
    seen: dict[int, str] = {}
    for name in list(tensors):  # tied weights share storage; safetensors stores each tensor once
        pointer = tensors[name].data_ptr()
        if pointer in seen:
            tensors[name] = tensors[name].clone()
        seen[pointer] = name
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    for file in bins + list(folder.glob("pytorch_model*.bin.index.json")):
        file.unlink()


def input_embeddings(folder: Path | str):
    """(vocab, width) float32 tensor: the input token embeddings of the model in `folder`."""
    for tensor in checkpoint_tensors(folder, "embeddings.word_embeddings.weight").values():
        return tensor
    raise BertdistillError(f"{folder}: no input token embeddings (embeddings.word_embeddings.weight)")


def evenly_spaced(total: int, k: int) -> list[int]:
    """k of `total` layers, evenly spaced with the first and last included (6 -> 2 gives [0, 5])."""
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, k)})


def student_config(source: Path | str, layers: int, vocab_size: int, pad_id: int, num_labels: int) -> dict:
    """The config (as a dict) of a `layers`-deep copy of the encoder in `source` with a pruned vocabulary whose
    padding id is `pad_id`. Raises if `layers` exceeds the source's depth."""
    config = read_config(source)
    adapter = family(config.get("model_type"), str(source))
    available = int(config[adapter.depth_key])
    if layers > available:
        raise BertdistillError(f"{source}: {layers} layers asked of a model with {available}")
    student = {k: v for k, v in config.items() if k not in ("architectures", "id2label", "label2id", "_name_or_path",
                                                             "transformers_version", "dtype", "torch_dtype")}
    student.update({adapter.depth_key: layers, "vocab_size": vocab_size, "pad_token_id": pad_id,
                    "num_labels": num_labels})
    if adapter.positions_after_pad:
        student["max_position_embeddings"] = config["max_position_embeddings"] - _position_shift(config, pad_id)
    return student


def build(config: dict):
    """A randomly initialised sequence classifier from a `student_config` dict."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    settings = dict(config)
    model_type = settings.pop("model_type")
    return AutoModelForSequenceClassification.from_config(AutoConfig.for_model(model_type, **settings))


def copy_layers(model, source: Path | str, layers: list[int], kept: np.ndarray) -> list[str]:
    """Load `model` (built by `build`) from the checkpoint in `source`: source layer layers[i] into layer i, the
    input embeddings' `kept` rows, the rest as is. Every weight of the model must come from the source with the
    same shape, except a classifier head the source does not have (or has for other labels); returns those left
    as initialised."""
    import torch

    config = read_config(source)
    adapter = family(config.get("model_type"), str(source))
    tensors = checkpoint_tensors(source)
    prefix = model.base_model_prefix
    marker = f"{adapter.layers}."
    target = model.state_dict()
    shift = _position_shift(config, model.config.pad_token_id) if adapter.positions_after_pad else 0
    copied, fresh = {}, []
    for key, want in target.items():
        name = key
        if marker in key:
            head, rest = key.split(marker, 1)
            index, tail = rest.split(".", 1)
            name = f"{head}{marker}{layers[int(index)]}.{tail}"
        tensor = tensors.get(name)
        if tensor is None and name.startswith(prefix + "."):
            tensor = tensors.get(name[len(prefix) + 1:])  # a bare encoder checkpoint (no task head wrapper)
        if tensor is not None and name.endswith("embeddings.word_embeddings.weight"):
            tensor = tensor[torch.as_tensor(kept)]
        elif tensor is not None and shift and name.endswith("embeddings.position_embeddings.weight"):
            tensor = tensor[shift:]
        if tensor is None or tensor.shape != want.shape:
            if key.startswith(prefix + "."):
                raise BertdistillError(f"{source}: weight {name} is missing or has shape "
                                       f"{None if tensor is None else tuple(tensor.shape)}, the student needs "
                                       f"{tuple(want.shape)}")
            fresh.append(key)
            continue
        copied[key] = tensor.to(want.dtype)
    missing, _ = model.load_state_dict(copied, strict=False)
    assert sorted(missing) == sorted(fresh), "every weight is either copied or a fresh head"
    return fresh


def _position_shift(config: dict, pad_id: int) -> int:
    return int(config.get("pad_token_id") or 0) - pad_id
