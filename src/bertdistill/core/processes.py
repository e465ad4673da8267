"""This process among several (Hugging Face Accelerate's DDP process group: gloo on CPU, NCCL on GPUs): which
share of the work it does, how results are gathered, and the one-line error exit shared by the distributed entry
points (`python -m bertdistill.teacher.distributed`, `... bertdistill.labels.distributed`)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from bertdistill.errors import BertdistillError


@dataclass(frozen=True)
class Shard:
    """This process among the labeling processes: it labels every `world`-th chunk still to do."""

    rank: int = 0
    world: int = 1
    gather: Callable[[list], list] = list  # every process's list, concatenated in rank order
    barrier: Callable[[], None] = lambda: None


def accelerate_state():
    """Accelerate's PartialState, which joins the process group; on CPU unless CUDA is there and not refused."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())


def accelerate_shard() -> Shard:
    """This process's Shard: its index, the process count, an all-gather and a barrier."""
    from accelerate.utils import gather_object

    state = accelerate_state()
    gather = gather_object if state.num_processes > 1 else list
    return Shard(state.process_index, state.num_processes, gather, state.wait_for_everyone)


def device_name() -> str:
    """'cuda' (this process's GPU, which Accelerate has made the current one) or 'cpu'."""
    return "cpu" if accelerate_state().device.type == "cpu" else "cuda"


def on_this_device(config):
    """The config with this process's device for the teacher, for this stage only (config.json keeps the
    configured one)."""
    return config.model_copy(update={"teacher": config.teacher.model_copy(update={"device": device_name()})})


def exit_code(work) -> int:
    """Run work(); a BertdistillError is one line on stderr and exit code 2, as in the CLI."""
    try:
        work()
    except BertdistillError as err:
        print(f"bertdistill: error: {err}", file=sys.stderr)
        return 2
    return 0
