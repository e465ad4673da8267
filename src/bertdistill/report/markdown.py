"""leaderboard.json + diagnostics.json -> report.md, report.html and the figures they show.

The report is built once as a list of blocks (heading, paragraph, table, list, image) and rendered twice, to
Markdown and to a self-contained HTML page (figures embedded), so the two never disagree. Findings are sentences
computed from the numbers, each with the target it is judged against.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

from bertdistill.core import files
from bertdistill.errors import BertdistillError
from bertdistill.names import TEACHER_INT8, TEACHER_ONNX, TEACHER_ROWS
from bertdistill.report import plots
from bertdistill.report.findings import dark_knowledge_blocks, ensemble_blocks, findings, uncertainty_blocks

COLUMNS = ["model", "role", "{metric}", "gain vs hard-label twin", "agreement", "cosine", "KL", "ECE", "p50 ms",
           "p95 ms", "texts/s", "speed-up", "vs ONNX", "vs int8", "size MB", "params",
           "train s"]
FIGURES = {"quality_vs_latency.png": "quality vs latency", "reliability.png": "reliability diagram"}


def table_rows(entries: list[dict], metric: str) -> list[list[str]]:
    """The leaderboard as display strings: teacher rows on top (PyTorch, ONNX, int8), then best metric first."""
    teacher_order = {name: i for i, name in enumerate(TEACHER_ROWS)}
    ordered = sorted(entries, key=lambda e: (e["role"] != "teacher", teacher_order.get(e["name"], 3),
                                             -e["metrics"][metric]))
    return [_row(e, metric) for e in ordered]


def _row(e: dict, metric: str) -> list[str]:
    gain, speedups, kl, ece = e.get("gain_vs_twin"), e.get("speedups", {}), e["fidelity"].get("kl"), e.get("ece")
    interval = e.get("ci_vs_twin")
    return [
        e["name"], e["role"], f"{100 * e['metrics'][metric]:.2f}",
        "" if gain is None else f"{100 * gain:+.2f} vs {e['twin']}" + (_ci(interval) if interval else ""),
        f"{e['fidelity']['agreement']:.3f}", f"{e['fidelity']['cosine']:.3f}",
        "" if kl is None else f"{kl:.3f}", "" if ece is None else f"{ece:.3f}",
        f"{e['latency_ms']['p50']:.3f}", f"{e['latency_ms']['p95']:.3f}", f"{e['throughput_per_s']:.0f}",
        f"{e['speedup_vs_teacher']:.1f}x", _speedup(speedups.get(TEACHER_ONNX)),
        _speedup(speedups.get(TEACHER_INT8)), f"{e['size_bytes'] / 1e6:.1f}", f"{e['n_params']:,}",
        "" if e.get("train_seconds") is None else f"{e['train_seconds']:.0f}",
    ]


def _ci(interval: dict) -> str:
    return f" [{100 * interval['low']:+.2f}, {100 * interval['high']:+.2f}]"


def _speedup(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}x"


def markdown_table(entries: list[dict], metric: str) -> str:
    return _markdown_table([c.format(metric=metric) for c in COLUMNS], table_rows(entries, metric))


def document(entries: list[dict], metric: str, env: dict, dataset: dict, diagnostics: dict,
             seeds: dict | None = None) -> list[tuple]:
    """The report as blocks: ("h1"|"h2"|"p", text), ("table", header, rows), ("list", items), ("image", file)."""
    context = (f"Dataset `{dataset['name']}` ({dataset['task']}, rows {dataset['rows']}). Measured {env['date']} "
               f"on {env['machine']}, {env['threads']} thread(s); latency is end to end (raw string in, "
               f"probabilities out), warmed up; speed-ups are ratios of p50s measured in this run against the "
               f"PyTorch teacher, its ONNX Runtime fp32 export and its int8 quantization. "
               f"Versions: {env['versions']}." + _load_note(env))
    blocks = [("h1", f"bertdistill report: {dataset['name']}"), ("p", context),
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


def _load_note(env: dict) -> str:
    """Other work running while the latencies were taken inflates them; say how much there was."""
    if env.get("load_average") is None:
        return ""
    return f" Load average (1 min) when evaluation started: {env['load_average']:.2f}."


def seed_blocks(seeds: dict, metric: str) -> list[tuple]:
    """Headline metric as mean ± std over student seeds (teacher fixed), one row per model."""
    rows = [[name, f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}", str(s["n"]), ", ".join(map(str, s["seeds"]))]
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
    images = {"quality_vs_latency.png": plots.quality_vs_latency(entries, metric)}
    if diagnostics.get("calibration"):
        images["reliability.png"] = plots.reliability_diagram(diagnostics["calibration"], dataset["task"])
    for name, png in images.items():
        files.write_bytes(out / name, png)
    blocks = document(entries, metric, env, dataset, diagnostics, seeds)
    files.write_text(out / "report.md", to_markdown(blocks))
    files.write_text(out / "report.html", to_html(dataset["name"], blocks, images))
    return out / "report.md"


def to_markdown(blocks: list[tuple]) -> str:
    parts = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            parts.append(block[1])
        elif kind == "table":
            parts.append(_markdown_table(block[1], block[2]))
        elif kind == "list":
            parts.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "image":
            parts.append(f"![{FIGURES.get(block[1], block[1])}]({block[1]})")
    return "\n\n".join(part for part in parts if part) + "\n"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"
    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])


def to_html(title: str, blocks: list[tuple], images: dict[str, bytes]) -> str:
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            body.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "table":
            header = "".join(f"<th>{html.escape(cell)}</th>" for cell in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block[2])
            body.append(f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody>'
                        f"</table></div>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "image" and block[1] in images:
            data = base64.b64encode(images[block[1]]).decode("ascii")
            body.append(f'<img alt="{html.escape(FIGURES.get(block[1], block[1]))}" '
                        f'src="data:image/png;base64,{data}">')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bertdistill report: {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.85rem; margin-bottom: 1rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.45rem; text-align: right; }}
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
.scroll {{ overflow-x: auto; }} img {{ max-width: 100%; }} p {{ color: #444; }}
</style></head><body>
{chr(10).join(body)}
</body></html>
"""
