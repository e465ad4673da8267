"""The report's figures as PNG bytes: quality vs latency with its Pareto front, and reliability diagrams."""
from __future__ import annotations

import io as bytes_io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

from bertdistill.names import is_multilabel

ROLE_STYLE = {"teacher": ("#d62728", "*"), "baseline": ("#7f7f7f", "o"), "distilled": ("#1f77b4", "D"),
              "ensemble": ("#2ca02c", "s")}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower latency x, higher quality y), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def quality_vs_latency(entries: list[dict], metric: str, title: str = "Quality vs latency") -> bytes:
    """Every model at (single-text p50, test metric); the Pareto front joined by a line."""
    figure, axes = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    points = [(e["latency_ms"]["p50"], 100 * e["metrics"][metric]) for e in entries]
    for entry, (x, y) in zip(entries, points):
        color, marker = ROLE_STYLE.get(entry["role"], ("black", "x"))
        axes.scatter(x, y, color=color, marker=marker, s=70, label=entry["role"], zorder=3)
        axes.annotate(entry["name"], (x, y), fontsize=7, xytext=(5, 4), textcoords="offset points")
    front = pareto_front(points)
    axes.step([points[i][0] for i in front], [points[i][1] for i in front], where="post", color="#2ca02c",
              alpha=0.5, linestyle="--", label="Pareto front", zorder=2)
    axes.set_xscale("log")
    axes.set_xlabel("single-text latency p50, ms (log scale, end to end)")
    axes.set_ylabel(f"test {metric} x 100")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes.legend(unique.values(), unique.keys(), loc="lower right", fontsize=8)
    return _png(figure)


def reliability_diagram(calibration: dict[str, dict], task: str) -> bytes:
    """Accuracy (observed frequency) against mean confidence per bin, one line per model; diagonal = calibrated."""
    figure, axes = plt.subplots(figsize=(6.5, 5), dpi=120)
    axes.plot([0, 1], [0, 1], color="black", linewidth=1, linestyle=":", label="perfectly calibrated")
    for name, curve in calibration.items():
        axes.plot(curve["confidence"], curve["accuracy"], marker="o", markersize=3, linewidth=1,
                  label=f"{name} (ECE {curve['ece']:.3f})")
    what = "top-label confidence" if not is_multilabel(task) else "predicted probability (all labels pooled)"
    axes.set_xlabel(what)
    axes.set_ylabel("accuracy" if not is_multilabel(task) else "observed frequency")
    axes.set_title("Reliability on the test split")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    return _png(figure)


def _png(figure) -> bytes:
    figure.tight_layout()
    buffer = bytes_io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
