"""The report's figures as PNG bytes: the quality-vs-latency chart (chart.py's scene, drawn with matplotlib so that
the PNG in report.md is the chart of the page and report.html) and reliability diagrams."""
from __future__ import annotations

import io as bytes_io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
from matplotlib.patches import Circle, FancyBboxPatch  # noqa: E402

from bertdistill.names import is_multilabel  # noqa: E402
from bertdistill.report import chart  # noqa: E402

PIXELS_PER_INCH = 72  # one scene pixel is one point: font sizes and line widths carry over unchanged
_ALIGN = {"start": "left", "middle": "center", "end": "right"}


def draw(scene: chart.Scene, dpi: int = 144) -> bytes:
    """A chart scene as PNG, pixel for pixel (at dpi / 72 times the size)."""
    figure = plt.figure(figsize=(scene.width / PIXELS_PER_INCH, scene.height / PIXELS_PER_INCH), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, scene.width)
    axes.set_ylim(scene.height, 0)  # y grows downwards, as in SVG
    axes.axis("off")
    for mark in scene.marks:
        for inner in mark.marks if isinstance(mark, chart.Group) else [mark]:
            _draw(axes, inner)
    return _png(figure, tight=False)


def _draw(axes, mark) -> None:
    if isinstance(mark, chart.Line):
        axes.plot([mark.x1, mark.x2], [mark.y1, mark.y2], color=mark.color, linewidth=mark.width,
                  linestyle=(0, (5, 3)) if mark.dashed else "-", solid_capstyle="butt")
    elif isinstance(mark, chart.Dot):
        axes.add_patch(Circle((mark.x, mark.y), mark.radius, facecolor=mark.color, edgecolor=chart.PAPER,
                              linewidth=1, zorder=3))
    elif isinstance(mark, chart.Badge):
        box = mark.box
        axes.add_patch(FancyBboxPatch((box.x, box.y), box.w, box.h, boxstyle="round,pad=0,rounding_size=4",
                                      facecolor=mark.color, edgecolor="none", zorder=4))
        _draw(axes, chart.badge_text(mark))
    else:
        axes.text(mark.x, mark.y, mark.text, fontsize=mark.size, color=mark.color, ha=_ALIGN[mark.anchor],
                  va="baseline", fontweight="bold" if mark.bold else "normal", zorder=5)


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


def _png(figure, tight: bool = True) -> bytes:
    if tight:
        figure.tight_layout()
    buffer = bytes_io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
