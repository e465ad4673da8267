"""Teacher labeling across processes with Hugging Face Accelerate (DDP process group: gloo on CPU, NCCL on GPUs).

    accelerate launch --multi_gpu --num_processes 2 -m bertdistill.labels.distributed CONFIG --out RUN [--set K=V]
    accelerate launch --multi_gpu --num_processes 2 -m bertdistill.labels.distributed \\
        --teacher TEACHER_DIR --texts FILE --cache DIR [--backend onnx-int8]

`--multi_gpu` is Accelerate's torchrun launcher: one process per GPU, or on a machine without CUDA (or with
ACCELERATE_USE_CPU=true) CPU processes joined by gloo. (`accelerate launch --cpu` starts several processes only
through MPI, `--mpirun_hostfile`; `torchrun --nproc_per_node 2 -m bertdistill.labels.distributed ...` works too.)

The first form is `bertdistill label` for a run directory (its transfer set, val and test); the second labels a
UTF-8 file, one text per line, with a bertdistill teacher into a soft-label cache. Each process opens the teacher
and labels the chunks c with c mod P == its index; after every round of chunks the records are gathered and the
main process alone writes the manifest (soft_labels.py), so the logits are the same concatenation in row order as a
single process makes, and an interrupted run resumes under any number of processes. Work done once (the run
directory, the transfer set, the ONNX export) is done by the main process while the others wait.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bertdistill.core.processes import Shard, accelerate_shard, device_name, exit_code, on_this_device
from bertdistill.errors import BertdistillError
from bertdistill.labels import soft_labels


def label_run(args: argparse.Namespace, shard: Shard) -> None:
    from bertdistill import pipeline
    from bertdistill.cli import resolve

    config, out = resolve(argparse.Namespace(command="label", config=args.config, out=args.out,
                                             overrides=args.overrides, data_dir=args.data_dir))
    run = pipeline.prepare(config, out)
    if shard.rank == 0:
        pipeline.start(run)
        pipeline.transfer_set(run)  # built and saved once; the other processes read it
        _export_once(run.teacher_dir, config.teacher.label_backend, run.dataset.train.texts)
    shard.barrier()
    run.config = on_this_device(config)
    pipeline.label(run, shard)


def label_texts(args: argparse.Namespace, shard: Shard) -> None:
    from bertdistill.transfer import read_lines

    texts = read_lines(Path(args.texts))
    if shard.rank == 0:
        _export_once(args.teacher, args.backend, texts)
    shard.barrier()
    labeler = soft_labels.open_labeler(args.teacher, args.backend, device_name(), calibration_texts=texts)
    soft_labels.teacher_logits(labeler, texts, args.cache, args.batch_size, chunk_rows=args.chunk_rows, shard=shard,
                               key=soft_labels.teacher_key(args.teacher, args.backend))


def _export_once(teacher_dir: Path, backend: str, calibration_texts: list[str]) -> None:
    """The ONNX export, made by one process before the others open it."""
    if backend.startswith("onnx"):
        soft_labels.open_labeler(teacher_dir, backend, calibration_texts=calibration_texts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bertdistill.labels.distributed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", help="a run's TOML file or built-in config name (first form)")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data-dir", help="folder holding local dataset copies (sets data.data_dir)")
    parser.add_argument("--teacher", type=Path, help="a bertdistill teacher folder (second form)")
    parser.add_argument("--texts", type=Path, help="UTF-8 file, one text per line (second form)")
    parser.add_argument("--cache", type=Path, help="soft-label cache directory (second form)")
    parser.add_argument("--backend", choices=soft_labels.BACKENDS, default="torch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--chunk-rows", type=int, default=soft_labels.CHUNK_ROWS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    by_texts = args.teacher is not None or args.texts is not None

    def work() -> None:
        if by_texts and not (args.teacher and args.texts and args.cache):
            raise BertdistillError("labeling a text file needs --teacher, --texts and --cache")
        shard = accelerate_shard()
        if by_texts:
            label_texts(args, shard)
        else:
            label_run(args, shard)

    return exit_code(work)


if __name__ == "__main__":
    sys.exit(main())
