"""`bertdistill run CONFIG` runs every stage; `teacher`, `label`, `students`, `ensembles`, `evaluate`, `report`
run one.

Bad input ends with one line on stderr and exit status 2; an interrupted run resumes when re-run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bertdistill import pipeline
from bertdistill.config import apply_overrides, builtin_configs, config_from_dict, load_config
from bertdistill.core import files
from bertdistill.errors import BertdistillError

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


def execute(command: str, run: pipeline.Run) -> None:
    from bertdistill.evaluation.leaderboard import evaluate_run
    from bertdistill.report.markdown import write_report

    stages = STAGES if command == "run" else (command,)
    if "teacher" in stages or "label" in stages or "students" in stages:
        pipeline.start(run)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "configs":
        for name, path in sorted(builtin_configs().items()):
            print(f"{name}\t{path}")
        return 0
    try:
        if args.command == "serve":
            from bertdistill.serve import serve

            serve(args.run_dir, args.host, args.port, args.access_log)
            return 0
        config, out = resolve(args)
        run = pipeline.prepare(config, out)
        execute(args.command, run)
    except BertdistillError as err:
        print(f"bertdistill: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bertdistill: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
