"""Teacher fine-tuning across processes with Hugging Face Accelerate (DDP process group: gloo on CPU, NCCL on GPUs).

    accelerate launch --multi_gpu --num_processes 2 -m bertdistill.teacher.distributed CONFIG --out RUN [--set K=V]

The teacher stage of `bertdistill run`, data-parallel: every process holds the model and takes its share of each
batch; DDP averages the gradients, so each optimizer step is the one a single process takes on the whole batch
(same batches, same schedule, the same result up to floating-point sums and dropout). The main process creates the
run directory and writes, scores and picks the epoch checkpoints; an interrupted run resumes from the last epoch
under any number of processes. Then label (`bertdistill.labels.distributed`) and the later stages as usual.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bertdistill.core.processes import accelerate_shard, exit_code, on_this_device


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bertdistill.teacher.distributed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a run's TOML file or built-in config name")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data-dir", help="folder holding local dataset copies (sets data.data_dir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code(lambda: fine_tune_run(args))


def fine_tune_run(args: argparse.Namespace) -> None:
    from bertdistill import pipeline
    from bertdistill.cli import resolve

    shard = accelerate_shard()
    config, out = resolve(argparse.Namespace(command="teacher", config=args.config, out=args.out,
                                             overrides=args.overrides, data_dir=args.data_dir))
    run = pipeline.prepare(config, out)
    if shard.rank == 0:
        pipeline.start(run, trains_teacher=True)
    shard.barrier()
    run.config = on_this_device(config)
    if config.teacher.reuse:  # adopting a fine-tuned teacher is a copy: the main process does it
        if shard.rank == 0:
            pipeline.train_teacher(run)
        shard.barrier()
    else:
        pipeline.train_teacher(run, shard)


if __name__ == "__main__":
    sys.exit(main())
