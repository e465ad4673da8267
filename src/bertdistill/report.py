"""leaderboard.json -> report.md, report.html and a quality-vs-latency plot (latency on a log axis)."""
from __future__ import annotations

import base64
import html
import io as bytes_io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

from . import io  # noqa: E402
from .errors import BertdistillError  # noqa: E402

ROLE_STYLE = {"teacher": ("#d62728", "*"), "baseline": ("#7f7f7f", "o"), "distilled": ("#1f77b4", "D"),
              "ensemble": ("#2ca02c", "s")}
COLUMNS = ["model", "role", "{metric}", "gain vs hard-label twin", "agreement", "cosine", "p50 ms", "p95 ms",
           "texts/s", "speed-up", "size MB", "params"]


def table_rows(entries: list[dict], metric: str) -> list[list[str]]:
    """The leaderboard as display strings, best headline metric first (teacher on top)."""
    ordered = sorted(entries, key=lambda e: (e["role"] != "teacher", -e["metrics"][metric]))
    rows = []
    for e in ordered:
        gain = e.get("gain_vs_twin")
        rows.append([
            e["name"], e["role"], f"{100 * e['metrics'][metric]:.2f}",
            "" if gain is None else f"{100 * gain:+.2f} vs {e['twin']}",
            f"{e['fidelity']['agreement']:.3f}", f"{e['fidelity']['cosine']:.3f}",
            f"{e['latency_ms']['p50']:.3f}", f"{e['latency_ms']['p95']:.3f}", f"{e['throughput_per_s']:.0f}",
            f"{e['speedup_vs_teacher']:.1f}x", f"{e['size_bytes'] / 1e6:.1f}", f"{e['n_params']:,}",
        ])
    return rows


def markdown_table(entries: list[dict], metric: str) -> str:
    header = [c.format(metric=metric) for c in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(entries, metric)]
    return "\n".join(lines)


def findings(entries: list[dict], metric: str) -> list[str]:
    """One sentence per distilled student: by how much it beats (or trails) its hard-label twin on test."""
    lines = []
    for e in entries:
        if e.get("gain_vs_twin") is not None:
            verb = "beats" if e["gain_vs_twin"] > 0 else "does not beat"
            lines.append(f"Distilled `{e['name']}` {verb} its hard-label twin `{e['twin']}` by "
                         f"{100 * e['gain_vs_twin']:+.2f} points of test {metric} "
                         f"({100 * e['metrics'][metric]:.2f} vs {100 * (e['metrics'][metric] - e['gain_vs_twin']):.2f}).")
    return lines


def plot(entries: list[dict], metric: str, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for e in entries:
        color, marker = ROLE_STYLE.get(e["role"], ("black", "x"))
        axes.scatter(e["latency_ms"]["p50"], 100 * e["metrics"][metric], color=color, marker=marker, s=70,
                     label=e["role"])
        axes.annotate(e["name"], (e["latency_ms"]["p50"], 100 * e["metrics"][metric]), fontsize=8,
                      xytext=(5, 4), textcoords="offset points")
    axes.set_xscale("log")
    axes.set_xlabel("single-text latency p50, ms (log scale, end to end)")
    axes.set_ylabel(f"test {metric} x 100")
    axes.set_title("Quality vs latency")
    axes.grid(True, which="both", alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes.legend(unique.values(), unique.keys(), loc="lower right")
    figure.tight_layout()
    buffer = bytes_io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    io.write_bytes(path, buffer.getvalue())


def write_report(out: Path, metric: str) -> Path:
    """Write report.md, report.html and quality_vs_latency.png from the run's leaderboard."""
    if not (out / "leaderboard.json").exists():
        raise BertdistillError(f"{out}: no leaderboard.json yet; run `bertdistill evaluate` first")
    entries = io.read_json(out / "leaderboard.json")
    env = io.read_json(out / "environment.json")
    dataset = io.read_json(out / "dataset.json")
    plot(entries, metric, out / "quality_vs_latency.png")
    context = (f"Dataset `{dataset['name']}` ({dataset['task']}, rows {dataset['rows']}). Measured {env['date']} "
               f"on {env['machine']}, {env['threads']} thread(s); latency is end to end (raw string in, "
               f"probabilities out), warmed up. Versions: {env['versions']}.")
    notes = findings(entries, metric)
    markdown = "\n\n".join([f"# bertdistill report: {dataset['name']}", context, markdown_table(entries, metric),
                            "\n".join(f"- {line}" for line in notes), "![quality vs latency](quality_vs_latency.png)"])
    io.write_text(out / "report.md", markdown + "\n")
    io.write_text(out / "report.html", _html(dataset["name"], context, entries, metric, notes,
                                             (out / "quality_vs_latency.png").read_bytes()))
    return out / "report.md"


def _html(title: str, context: str, entries: list[dict], metric: str, notes: list[str], png: bytes) -> str:
    header = "".join(f"<th>{html.escape(c.format(metric=metric))}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table_rows(entries, metric))
    items = "".join(f"<li>{html.escape(line)}</li>" for line in notes)
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bertdistill report: {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.35rem 0.5rem; text-align: right; }}
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
.scroll {{ overflow-x: auto; }} img {{ max-width: 100%; }} p.context {{ color: #555; }}
</style></head><body>
<h1>bertdistill report: {html.escape(title)}</h1>
<p class="context">{html.escape(context)}</p>
<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>
<ul>{items}</ul>
<img alt="quality vs latency" src="data:image/png;base64,{image}">
</body></html>
"""
