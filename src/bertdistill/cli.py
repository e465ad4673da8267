"""`bertdistill run CONFIG` runs every stage; `teacher`, `label`, `students`, `ensembles`, `evaluate`, `report`
run one; `serve`, `predict` and `export` use a finished run.

Bad input ends with one line on stderr and exit status 2; an interrupted run resumes when re-run. The heavy
libraries are imported only once the input has been checked, so `--help` and bad input answer at once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bertdistill.config import apply_overrides, builtin_configs, config_from_dict, load_config
from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.ship.predict import FORMATS

STAGES = ("teacher", "label", "students", "ensembles", "evaluate", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertdistill", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run", *STAGES):
        command = commands.add_parser(name, help="all stages in order" if name == "run" else f"the {name} stage")
        command.add_argument("config", nargs="?", help="TOML file or built-in config name; "
                             "default for single stages: OUT/config.json")
        command.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
        command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                             help="override a config key, e.g. --set teacher.epochs=1 (repeatable)")
        command.add_argument("--data-dir", help="folder holding local dataset copies (sets data.data_dir)")
    commands.add_parser("configs", help="list the built-in configs")
    serve = commands.add_parser("serve", help="web page and JSON API comparing the run's models on your text")
    serve.add_argument("run_dir", type=Path, help="a run directory (after `evaluate` and `report` for the leaderboard)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-access-log", dest="access_log", action="store_false", help="do not log every request")
    predict = commands.add_parser("predict", help="labels and probabilities from one model of a run for your texts")
    predict.add_argument("run_dir", type=Path, help="a run directory")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (or --input FILE)")
    predict.add_argument("--model", help="a model of the run (default: the recommended one: the best val score "
                         "among students and ensembles, ties within half a point to the fastest)")
    predict.add_argument("--input", type=Path, help=".csv or .jsonl (see --column), or plain text: a text per line")
    predict.add_argument("--column", default="text", help="the CSV column or JSONL field holding the text")
    predict.add_argument("--output", type=Path, help=".jsonl or .csv file (default: JSONL on stdout)")
    predict.add_argument("--format", choices=FORMATS, help="output format (default: from --output's suffix)")
    predict.add_argument("--batch-size", type=int, default=256)
    export = commands.add_parser("export", help="a self-contained bundle of one student or ensemble (numpy, "
                                 "onnxruntime and tokenizers only)")
    export.add_argument("run_dir", type=Path, help="a run directory")
    export.add_argument("--model", required=True, help="the student or ensemble to export")
    export.add_argument("--out", type=Path, required=True, help="the bundle's folder (must not exist or be empty)")
    return parser


def resolve(args: argparse.Namespace):
    """The validated config and the run directory for a command."""
    overrides = list(args.overrides) + ([f'data.data_dir="{args.data_dir}"'] if args.data_dir else [])
    if args.config:
        config = load_config(args.config, overrides)
    elif args.out and (args.out / "config.json").exists():
        raw = files.read_json(args.out / "config.json")
        apply_overrides(raw, overrides)
        config = config_from_dict(raw, str(args.out / "config.json"))
    else:
        raise BertdistillError(f"{args.command}: give a CONFIG (or --out of an existing run directory)")
    return config, args.out or Path("runs") / config.name


def execute(command: str, run) -> None:
    from bertdistill import pipeline
    from bertdistill.evaluation.leaderboard import evaluate_run
    from bertdistill.report.markdown import write_report

    stages = STAGES if command == "run" else (command,)
    if "teacher" in stages or "label" in stages or "students" in stages:
        pipeline.start(run, trains_teacher="teacher" in stages)
    for stage in stages:
        print(f"== {stage}", flush=True)
        if stage == "teacher":
            print(f"teacher: {pipeline.train_teacher(run)}")
        elif stage == "label":
            pipeline.label(run)
        elif stage == "students":
            pipeline.train_students(run)
        elif stage == "ensembles":
            for header in pipeline.train_ensembles(run):
                print(ensemble_line(header))
        elif stage == "evaluate":
            print_leaderboard(evaluate_run(run), run.scorer.metric)
        elif stage == "report":
            print(f"report: {write_report(run.out, run.scorer.metric)}")


def ensemble_line(header: dict) -> str:
    if header["status"] == "empty":
        return f"ensemble {header['name']}: EMPTY: {header['reason']}"
    members = ", ".join(f"{m['name']} x{m['weight']:.2f}" for m in header["members"])
    return f"ensemble {header['name']} ({header['method']}): val {header['val_score']:.4f} with {members}"


def print_leaderboard(entries: list[dict], metric: str) -> None:
    from bertdistill.report.markdown import COLUMNS, table_rows

    keep = [COLUMNS.index(c) for c in ("model", "role", "{metric}", "gain vs hard-label twin", "agreement",
                                       "p50 ms", "speed-up", "vs int8")]
    header = [COLUMNS[i].format(metric=metric) for i in keep]
    rows = [[row[i] for i in keep] for row in table_rows(entries, metric)]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    for line in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))


def predict(args: argparse.Namespace) -> None:
    from bertdistill.ship import predict as batch

    if bool(args.texts) == bool(args.input):
        raise BertdistillError("predict: give texts or --input FILE (one of the two)")
    if args.batch_size < 1:
        raise BertdistillError("predict: --batch-size must be at least 1")
    texts = args.texts or batch.read_texts(args.input, args.column)
    fmt = batch.output_format(args.output, args.format)
    if args.output and not args.output.parent.is_dir():
        raise BertdistillError(f"{args.output}: no folder {args.output.parent}")
    from bertdistill.ship.api import load

    batch.predict_to(load(args.run_dir, args.model), texts, args.output, fmt, args.batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "predict" or any(item.startswith("--") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:  # argparse leaves texts given after options over: they are texts all the same
        args.texts += extra
    if args.command == "configs":
        for name, path in sorted(builtin_configs().items()):
            print(f"{name}\t{path}")
        return 0
    try:
        if args.command == "serve":
            from bertdistill.serve import serve

            serve(args.run_dir, args.host, args.port, args.access_log)
            return 0
        if args.command == "predict":
            predict(args)
            return 0
        if args.command == "export":
            from bertdistill.ship.export import export_bundle

            print(f"export: {export_bundle(args.run_dir, args.model, args.out)}")
            return 0
        config, out = resolve(args)
        from bertdistill.rundir import check

        run = check(config, out)  # before importing PyTorch: bad input answers at once
        from bertdistill import pipeline

        execute(args.command, pipeline.ready(run))
    except BertdistillError as err:
        print(f"bertdistill: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bertdistill: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
