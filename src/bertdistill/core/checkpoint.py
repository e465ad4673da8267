"""Optimizer and scheduler state in safetensors + JSON, so resuming never unpickles anything."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from bertdistill.core import files


def save_optimizer(optimizer: torch.optim.Optimizer, scheduler, folder: Path) -> None:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    save_file(tensors, str(folder / "optimizer.safetensors"))
    files.write_json(folder / "optimizer.json", {
        "param_groups": state["param_groups"], "scalars": scalars, "scheduler": scheduler.state_dict()})


def load_optimizer(optimizer: torch.optim.Optimizer, scheduler, folder: Path) -> None:
    meta = files.read_json(folder / "optimizer.json")
    state: dict[int, dict] = {}
    for name, value in [*load_file(str(folder / "optimizer.safetensors")).items(), *meta["scalars"].items()]:
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    scheduler.load_state_dict(meta["scheduler"])
