"""leaderboard.json + diagnostics.json -> report.md, report.html and the figures they show.

The report is built once as a list of blocks (heading, paragraph, quote, table, list, image) and written as
Markdown; report.html is that Markdown rendered by markdown-it-py (CommonMark with tables, raw HTML off), with the
figures embedded and the quality-vs-latency chart inline as SVG, so the two never disagree. Text that comes from
data (names, labels, example texts) is escaped, so that it shows as written instead of being read as markup.
Findings are sentences computed from the numbers, each with the target it is judged against.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from markdown_it import MarkdownIt

from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.names import TEACHER_INT8, TEACHER_ONNX
from bertdistill.report import chart, plots
from bertdistill.report.findings import dark_knowledge_blocks, ensemble_blocks, findings, uncertainty_blocks
from bertdistill.report.formats import fixed, leaderboard_order, ms, points, signed_points, speedup

COLUMNS = ["model", "role", "{metric}", "gain vs hard-label twin", "agreement", "cosine", "KL", "ECE", "p50 ms",
           "p95 ms", "texts/s", "speed-up", "vs ONNX", "vs int8", "size MB", "params",
           "train s"]
FIGURES = {"quality_vs_latency.png": "quality vs latency", "reliability.png": "reliability diagram"}
# Markdown markup a data string could contain; "_" only where it could start or end emphasis (not in macro_f1),
# "(" only after "]" (a link)
_MARKUP = re.compile(r"[\\`*<>|&~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|(?<=\])\(")


def table_rows(entries: list[dict], metric: str) -> list[list[str]]:
    """The leaderboard as display strings: teacher rows on top (PyTorch, ONNX, int8), then best metric first."""
    return [_row(e, metric) for e in leaderboard_order(entries, metric)]


def _row(e: dict, metric: str) -> list[str]:
    gain, speedups, kl, ece = e.get("gain_vs_twin"), e.get("speedups", {}), e["fidelity"].get("kl"), e.get("ece")
    interval = e.get("ci_vs_twin")
    return [
        e["name"], e["role"], points(e["metrics"][metric]),
        "" if gain is None else f"{signed_points(gain)} vs {e['twin']}" + (_ci(interval) if interval else ""),
        fixed(e["fidelity"]["agreement"], 3), fixed(e["fidelity"]["cosine"], 3),
        "" if kl is None else fixed(kl, 3), "" if ece is None else fixed(ece, 3),
        ms(e["latency_ms"]["p50"]), ms(e["latency_ms"]["p95"]), f"{e['throughput_per_s']:,.0f}",
        speedup(e["speedup_vs_teacher"]), _speedup(speedups.get(TEACHER_ONNX)),
        _speedup(speedups.get(TEACHER_INT8)), fixed(e["size_bytes"] / 1e6, 1), f"{e['n_params']:,}",
        "" if e.get("train_seconds") is None else f"{e['train_seconds']:,.0f}",
    ]


def _ci(interval: dict) -> str:
    return f" [{signed_points(interval['low'])}, {signed_points(interval['high'])}]"


def _speedup(value: float | None) -> str:
    return "" if value is None else speedup(value)


def markdown_table(entries: list[dict], metric: str) -> str:
    return _markdown_table([c.format(metric=metric) for c in COLUMNS], table_rows(entries, metric))


def document(entries: list[dict], metric: str, env: dict, dataset: dict, diagnostics: dict,
             seeds: dict | None = None) -> list[tuple]:
    """The report as blocks: ("h1"|"h2"|"h3", text), ("p", Markdown), ("quote", text), ("table", header, rows),
    ("list", Markdown items), ("image", file). Headings, quotes and table cells are plain text."""
    blocks = [("h1", f"bertdistill report: {dataset['name']}"), ("p", _context(dataset, env)),
              ("table", [c.format(metric=metric) for c in COLUMNS], table_rows(entries, metric)),
              ("list", findings(entries, metric, diagnostics)), ("image", "quality_vs_latency.png")]
    if seeds:
        blocks += seed_blocks(seeds, metric)
    blocks += ensemble_blocks(entries, metric, diagnostics)
    if diagnostics.get("calibration"):
        blocks += [("h2", "Calibration"), ("p", "Expected calibration error on test (15 equal-width bins; "
                    "multiclass: top-label confidence, multilabel: every label's probability pooled)."),
                   ("image", "reliability.png")]
    blocks += uncertainty_blocks(diagnostics, metric) + dark_knowledge_blocks(diagnostics)
    return blocks


def _context(dataset: dict, env: dict) -> str:
    rows = ", ".join(f"{count:,} {split}" for split, count in dataset["rows"].items())
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    return (f"Dataset `{dataset['name']}` ({dataset['task']}; {rows} rows). Measured {escape(env['date'])} on "
            f"{escape(env['machine'])}, {env['threads']} thread(s); latency is end to end (raw string in, "
            "probabilities out), warmed up; speed-ups are ratios of p50s measured in this run against the PyTorch "
            "teacher, its ONNX Runtime fp32 export and its int8 quantization. Test metrics are in points (x 100). "
            f"Versions: {escape(versions)}." + _load_note(env))


def _load_note(env: dict) -> str:
    """Other work running while the latencies were taken inflates them; say how much there was."""
    if env.get("load_average") is None:
        return ""
    return f" Load average (1 min) when evaluation started: {env['load_average']:.2f}."


def seed_blocks(seeds: dict, metric: str) -> list[tuple]:
    """Headline metric as mean ± std over student seeds (teacher fixed), one row per model."""
    rows = [[name, f"{points(s['mean'])} ± {points(s['std'])}", str(s["n"]), ", ".join(map(str, s["seeds"]))]
            for name, s in seeds["models"].items()]
    note = seeds.get("note", "")
    return [("h2", "Seeds"), ("p", f"Test {metric} over student seeds, the teacher and its soft labels fixed. {note}"),
            ("table", ["model", f"{metric} mean ± std", "seeds", "which"], rows)]


def write_report(out: Path, metric: str) -> Path:
    """Write report.md, report.html and the figures from the run's leaderboard and diagnostics."""
    if not (out / "leaderboard.json").exists():
        raise BertdistillError(f"{out}: no leaderboard.json yet; run `bertdistill evaluate` first")
    entries, env = files.read_json(out / "leaderboard.json"), files.read_json(out / "environment.json")
    dataset = files.read_json(out / "dataset.json")
    diagnostics = files.read_json(out / "diagnostics.json") if (out / "diagnostics.json").exists() else {}
    seeds = files.read_json(out / "seeds.json") if (out / "seeds.json").exists() else None
    scene = chart.quality_vs_latency(entries, metric)
    images = {"quality_vs_latency.png": plots.draw(scene)}
    figures = {"quality_vs_latency.png": f'<figure class="chart">{chart.to_svg(scene)}</figure>'}
    if diagnostics.get("calibration"):
        images["reliability.png"] = plots.reliability_diagram(diagnostics["calibration"], dataset["task"])
        figures["reliability.png"] = _embedded_png("reliability.png", images["reliability.png"])
    for name, png in images.items():
        files.write_bytes(out / name, png)
    blocks = document(entries, metric, env, dataset, diagnostics, seeds)
    files.write_text(out / "report.md", to_markdown(blocks))
    files.write_text(out / "report.html", to_html(dataset["name"], blocks, figures))
    return out / "report.md"


def escape(text: str) -> str:
    """Plain text for Markdown, on one line: every character that could be markup is backslash-escaped."""
    return _MARKUP.sub(lambda match: "\\" + match.group(0), " ".join(str(text).split()))


def to_markdown(blocks: list[tuple]) -> str:
    return "\n\n".join(part for part in map(_markdown, blocks) if part) + "\n"


def _markdown(block: tuple) -> str:
    kind = block[0]
    if kind in ("h1", "h2", "h3"):
        return "#" * int(kind[1]) + " " + escape(block[1])
    if kind == "p":
        return block[1]
    if kind == "quote":
        return f"> “{escape(block[1])}”"
    if kind == "table":
        return _markdown_table(block[1], block[2])
    if kind == "list":
        return "\n".join(f"- {item}" for item in block[1])
    return f"![{FIGURES.get(block[1], block[1])}]({block[1]})"  # image


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(escape(cell) for cell in cells) + " |"
    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])


def _renderer() -> MarkdownIt:
    """CommonMark with tables and without raw HTML; a table scrolls sideways inside its own box."""
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    renderer.add_render_rule("table_open", lambda *args: '<div class="scroll"><table>\n')
    renderer.add_render_rule("table_close", lambda *args: "</table></div>\n")
    return renderer


_RENDERER = _renderer()


def to_html(title: str, blocks: list[tuple], figures: dict[str, str]) -> str:
    """The blocks' Markdown rendered to one self-contained page; an image block shows `figures[file]` (HTML)."""
    body = [figures.get(block[1], "") if block[0] == "image" else _RENDERER.render(_markdown(block))
            for block in blocks]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bertdistill report: {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.85rem; margin-bottom: 1rem;
         font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.45rem; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
code {{ background: #f2f3f5; padding: 0 0.2em; border-radius: 3px; }}
blockquote {{ margin: 0.5rem 0; padding-left: 1rem; border-left: 3px solid #ddd; color: #444; }}
.scroll, .chart {{ overflow-x: auto; }} img {{ max-width: 100%; }} p, li {{ color: #333; }}
.chart {{ margin: 1rem 0; }} .chart svg {{ display: block; min-width: 560px; max-width: 100%; height: auto; }}
</style></head><body>
{"".join(body)}
</body></html>
"""


def _embedded_png(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(FIGURES.get(name, name))}" src="data:image/png;base64,{data}">'
