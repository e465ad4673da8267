"""The quality-vs-latency chart: laid out once in pixels, drawn as SVG (the page, report.html) or PNG (plots.py).

Every model is a dot at (single-text p50 on a log axis, test metric), coloured by role; the dashed step line is the
Pareto front. A dot's label is a numbered badge set beside it where it covers no other badge or dot (a leader line
joins them when the badge had to move away), and the legend under the plot names every number. So no two labels
print over each other at any width, which name tags next to the dots cannot promise. No font metrics are
available here: text widths are estimated on the generous side (DejaVu Sans, the widest common default).
Each dot and legend entry carries a title (the hover tooltip) and its model's name in `data-model`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise, product
from xml.sax.saxutils import escape, quoteattr

from bertdistill.report.formats import fixed, leaderboard_order, ms, points, speedup

ROLE_COLORS = {"teacher": "#d62728", "baseline": "#7f7f7f", "distilled": "#1f77b4", "ensemble": "#2ca02c"}
OTHER_COLOR = "#8e44ad"
INK, MUTED, GRID, FRONT, PAPER = "#1d2330", "#5f6b7e", "#e4e8f0", "#2ca02c", "#ffffff"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
DEFAULT_WIDTH = 760
TICK_SIZE, BADGE_SIZE, LEGEND_SIZE = 11, 11, 12  # px
LEFT, RIGHT, TOP, AXIS_BAND, SIDE = 44, 16, 30, 44, 12  # margins around the plot area, px
DOT_RADIUS, GAP = 4.5, 2.0
RINGS = (0, 6, 14, 24, 36, 50)  # how far beyond the dot a badge may move before the free-space search, px
X_TITLES = ("single-text latency p50, ms (log scale)", "latency p50, ms (log scale)", "p50 ms (log)")
NARROW, WIDE = set("il.,:;'|!jtfr()[] ·"), set("mwMW@%…")  # DejaVu Sans: at most 0.42 em; up to 1 em


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: "Box", gap: float = 0.0) -> bool:
        return (self.x < other.x + other.w + gap and other.x < self.x + self.w + gap
                and self.y < other.y + other.h + gap and other.y < self.y + self.h + gap)

    def inside(self, other: "Box") -> bool:
        return (other.x <= self.x and self.x + self.w <= other.x + other.w
                and other.y <= self.y and self.y + self.h <= other.y + other.h)


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    color: str
    width: float = 1.0
    dashed: bool = False


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    color: str
    radius: float = DOT_RADIUS


@dataclass(frozen=True)
class Badge:
    """A model's number in a rounded box of its role's colour: the only label a dot gets."""

    box: Box
    number: int
    color: str


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # baseline
    text: str
    size: float
    color: str = INK
    anchor: str = "start"  # start | middle | end
    bold: bool = False


@dataclass
class Group:
    """One model's marks (its dot and badge, or its legend entry), with the tooltip that names it."""

    kind: str  # "point" | "entry"
    model: str
    title: str
    marks: list = field(default_factory=list)
    hover: Box | None = None  # an invisible area that also shows the tooltip (a legend entry's whole row)


@dataclass
class Scene:
    width: int
    height: int
    title: str
    marks: list  # Line | Dot | Badge | Text | Group, in drawing order


def plottable(entries: list[dict], metric: str) -> list[dict]:
    """Leaderboard entries with a positive p50 and a finite test metric, in the leaderboard's order."""
    def usable(e: dict) -> bool:
        p50, score = (e.get("latency_ms") or {}).get("p50"), (e.get("metrics") or {}).get(metric)
        return (isinstance(p50, (int, float)) and p50 > 0 and isinstance(score, (int, float))
                and math.isfinite(score))
    return leaderboard_order([e for e in entries if usable(e)], metric)


def pareto_front(points_: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower latency x, higher quality y), by x."""
    order = sorted(range(len(points_)), key=lambda i: (points_[i][0], -points_[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points_[i][1] > best:
            front.append(i)
            best = points_[i][1]
    return front


def text_width(text: str, size: float) -> float:
    """A generous estimate of the rendered width in px."""
    ems = sum(0.42 if c in NARROW else 1.0 if c in WIDE else 0.75 if c.isupper() else 0.64 for c in text)
    return ems * size


def quality_vs_latency(entries: list[dict], metric: str, width: int = DEFAULT_WIDTH) -> Scene:
    """The chart for every plottable entry, `width` px wide (the height follows from the legend)."""
    models = plottable(entries, metric)
    plot_height = min(340, max(200, round(0.5 * width)))
    area = Box(LEFT, TOP, width - LEFT - RIGHT, plot_height)
    xs = [math.log10(e["latency_ms"]["p50"]) for e in models]
    ys = [100 * e["metrics"][metric] for e in models]
    x_range, y_range = _padded(xs, 0.08, 0.15), _padded(ys, 0.08, 0.5)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (area.x + area.w * (x - x_range[0]) / (x_range[1] - x_range[0]),
                area.y + area.h * (y_range[1] - y) / (y_range[1] - y_range[0]))

    dots = [to_px(x, y) for x, y in zip(xs, ys)]
    marks = _axes(area, x_range, y_range, metric)
    marks += _front_line([dots[i] for i in pareto_front(list(zip(xs, ys)))])
    titles = [_title(n, e, metric) for n, e in enumerate(models, 1)]
    badges = place_badges(dots, [_badge_size(n) for n in range(1, len(models) + 1)], area)
    for n, (e, (x, y), box) in enumerate(zip(models, dots, badges), 1):
        color = ROLE_COLORS.get(e["role"], OTHER_COLOR)
        group = Group("point", e["name"], titles[n - 1])
        if box is not None and not _touches(box, x, y):
            edge_x, edge_y = min(max(x, box.x), box.x + box.w), min(max(y, box.y), box.y + box.h)
            group.marks.append(Line(x, y, edge_x, edge_y, MUTED, 0.8))
        group.marks.append(Dot(x, y, color))
        if box is not None:
            group.marks.append(Badge(box, n, color))
        marks.append(group)
    legend, bottom = _legend(models, titles, metric, area.y + area.h + AXIS_BAND, width)
    return Scene(width, round(bottom + 8), f"test {metric} against single-text latency for every model",
                 marks + legend)


def _padded(values: list[float], share: float, least: float) -> tuple[float, float]:
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max(share * (high - low), least)
    return low - pad, high + pad


def _axes(area: Box, x_range: tuple, y_range: tuple, metric: str) -> list:
    """Grid lines, tick labels (a label that would touch its neighbour is left out) and the axis titles."""
    marks, kept = [], []
    for value in _log_ticks(*x_range):
        x = area.x + area.w * (math.log10(value) - x_range[0]) / (x_range[1] - x_range[0])
        label = Text(x, area.y + area.h + 16, f"{value:g}", TICK_SIZE, MUTED, "middle")
        marks.append(Line(x, area.y, x, area.y + area.h, GRID))
        if not any(text_box(label).overlaps(text_box(other), 6) for other in kept):
            kept.append(label)
    for value, text in _linear_ticks(*y_range, most=max(3, round(area.h / 45))):
        y = area.y + area.h * (y_range[1] - value) / (y_range[1] - y_range[0])
        marks.append(Line(area.x, y, area.x + area.w, y, GRID))
        label = Text(area.x - 6, y + 4, text, TICK_SIZE, MUTED, "end")
        if not any(text_box(label).overlaps(text_box(other), 2) for other in kept):
            kept.append(label)
    marks.append(Line(area.x, area.y + area.h, area.x + area.w, area.y + area.h, MUTED))
    marks.append(Line(area.x, area.y, area.x, area.y + area.h, MUTED))
    room = area.w + LEFT + RIGHT - 2 * SIDE
    x_title = next((title for title in X_TITLES if text_width(title, LEGEND_SIZE) <= room), X_TITLES[-1])
    return marks + kept + [
        Text(SIDE / 2, TOP - 14, _fit(f"test {metric} x 100", room, LEGEND_SIZE), LEGEND_SIZE, INK),
        Text(SIDE + room / 2, area.y + area.h + 34, x_title, LEGEND_SIZE, INK, "middle")]


def _log_ticks(low: float, high: float) -> list[float]:
    """Decades inside [low, high] (log10 units); 1-2-5 steps when fewer than three decades fit."""
    exponents = range(math.floor(low), math.ceil(high) + 1)
    ticks = [10.0 ** k for k in exponents if low <= k <= high]
    if len(ticks) < 3:
        steps = (m * 10.0 ** k for k, m in product(exponents, (1, 2, 5)))
        ticks = sorted(value for value in steps if low <= math.log10(value) <= high)
    return ticks


def _linear_ticks(low: float, high: float, most: int) -> list[tuple[float, str]]:
    """At most about `most` round values (steps of 1, 2 or 5 x 10^k) inside [low, high], with their labels."""
    raw = (high - low) / most
    step = min(s * 10.0 ** e for e in (math.floor(math.log10(raw)), math.floor(math.log10(raw)) + 1)
               for s in (1, 2, 5) if s * 10.0 ** e >= raw)
    digits = max(0, -math.floor(math.log10(step)))
    first = math.ceil(low / step) * step
    count = math.floor((high - first) / step + 1e-9) + 1
    return [(first + i * step, fixed(first + i * step, digits)) for i in range(count)]


def _front_line(front: list[tuple[float, float]]) -> list[Line]:
    """The Pareto front as steps through its dots (sorted by latency): each step up is a slower, better model."""
    lines = []
    for (x1, y1), (x2, y2) in pairwise(front):
        lines += [Line(x1, y1, x2, y1, FRONT, 1.4, True), Line(x2, y1, x2, y2, FRONT, 1.4, True)]
    return lines


def _badge_size(number: int) -> tuple[float, float]:
    return 8 + text_width(str(number), BADGE_SIZE), BADGE_SIZE + 5


def _touches(box: Box, x: float, y: float) -> bool:
    return box.overlaps(Box(x - DOT_RADIUS, y - DOT_RADIUS, 2 * DOT_RADIUS, 2 * DOT_RADIUS), GAP + 0.5)


def place_badges(dots: list[tuple[float, float]], sizes: list[tuple[float, float]], area: Box) -> list[Box | None]:
    """Each dot's badge box, in order: the first candidate inside `area` clear of every dot and earlier badge, or None
    when the plot has no such place left (the legend still names the model)."""
    taken = [Box(x - DOT_RADIUS, y - DOT_RADIUS, 2 * DOT_RADIUS, 2 * DOT_RADIUS) for x, y in dots]
    placed = []
    for (x, y), (w, h) in zip(dots, sizes):
        box = next((b for b in _candidates(x, y, w, h, area)
                    if b.inside(area) and not any(b.overlaps(t, GAP) for t in taken)), None)
        if box is not None:
            taken.append(box)
        placed.append(box)
    return placed


def _candidates(x: float, y: float, w: float, h: float, area: Box):
    """Beside the dot (upper right first), then further out ring by ring, then anywhere in `area`, nearest first."""
    for ring in RINGS:
        s = DOT_RADIUS + GAP + 1 + ring
        for dx, dy in ((1, -1), (1, 0), (1, 1), (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1)):
            left = x + s if dx > 0 else x - s - w if dx < 0 else x - w / 2
            top = y + s if dy > 0 else y - s - h if dy < 0 else y - h / 2
            yield Box(left, top, w, h)
    grid = [Box(area.x + i, area.y + j, w, h) for i in range(0, int(area.w - w) + 1, 4)
            for j in range(0, int(area.h - h) + 1, 4)]
    yield from sorted(grid, key=lambda b: (b.x + w / 2 - x) ** 2 + (b.y + h / 2 - y) ** 2)


def _title(number: int, entry: dict, metric: str) -> str:
    ratio = entry.get("speedup_vs_teacher")
    return (f"{number}. {entry['name']} ({entry['role']}): test {metric} {points(entry['metrics'][metric])}, "
            f"p50 {ms(entry['latency_ms']['p50'])} ms" + ("" if ratio is None else f", {speedup(ratio)} the teacher"))


def _legend(models: list[dict], titles: list[str], metric: str, top: float, width: int) -> tuple[list, float]:
    """Numbered entries in columns (down, then across), then a key to the colours; returns (marks, bottom)."""
    row_height, column_gap = LEGEND_SIZE + 9, 18
    stats = [f"{points(e['metrics'][metric])} · {ms(e['latency_ms']['p50'])} ms" for e in models]
    badge_w = max((_badge_size(n)[0] for n in range(1, len(models) + 1)), default=0)
    stat_w = max((text_width(s, LEGEND_SIZE) for s in stats), default=0)
    need = badge_w + 6 + max((text_width(e["name"], LEGEND_SIZE) for e in models), default=0) + 12 + stat_w
    columns = max(1, min(3, int((width - 2 * SIDE + column_gap) // (need + column_gap))))
    column_w = (width - 2 * SIDE - (columns - 1) * column_gap) / columns
    rows = math.ceil(len(models) / columns)
    marks = []
    for i, (e, stat, title) in enumerate(zip(models, stats, titles)):
        column, row = divmod(i, rows)
        x, y = SIDE + column * (column_w + column_gap), top + row * row_height
        w, h = _badge_size(i + 1)
        name = _fit(e["name"], column_w - badge_w - 6 - 12 - stat_w, LEGEND_SIZE)
        marks.append(Group("entry", e["name"], title, [
            Badge(Box(x + badge_w - w, y, w, h), i + 1, ROLE_COLORS.get(e["role"], OTHER_COLOR)),
            Text(x + badge_w + 6, y + h - 4, name, LEGEND_SIZE),
            Text(x + column_w, y + h - 4, stat, LEGEND_SIZE, MUTED, "end")], Box(x, y - 2, column_w, h + 4)))
    key, bottom = _key(models, top + rows * row_height + 6, width)
    return marks + key, bottom


def _key(models: list[dict], top: float, width: int) -> tuple[list, float]:
    """Role colours and the Pareto front's dash, flowing onto more lines when the chart is narrow."""
    roles = list(dict.fromkeys(e["role"] for e in models))
    marks, x, y = [], SIDE, top
    for text in [*roles, "Pareto front"]:
        w = 18 + text_width(text, TICK_SIZE) + 14
        if x > SIDE and x + w > width - SIDE:
            x, y = SIDE, y + TICK_SIZE + 9
        middle = y + TICK_SIZE / 2 + 2
        if text in roles:
            marks.append(Dot(x + 6, middle, ROLE_COLORS.get(text, OTHER_COLOR)))
        else:
            marks.append(Line(x, middle, x + 14, middle, FRONT, 1.4, True))
        marks.append(Text(x + 18, y + TICK_SIZE, text, TICK_SIZE, MUTED))
        x += w
    return marks, y + TICK_SIZE + 6


def _fit(text: str, room: float, size: float) -> str:
    """`text`, shortened with an ellipsis until its estimated width fits `room` px."""
    if text_width(text, size) <= room:
        return text
    while text and text_width(text + "…", size) > room:
        text = text[:-1]
    return text + "…"


def text_box(text: Text) -> Box:
    """The box a text's glyphs take, estimated generously: from an em above the baseline to a quarter em below."""
    w = text_width(text.text, text.size)
    left = text.x - {"start": 0, "middle": w / 2, "end": w}[text.anchor]
    return Box(left, text.y - text.size, w, text.size * 1.25)


def to_svg(scene: Scene) -> str:
    """The scene as a standalone SVG document; presentation attributes only, so a strict CSP (no inline style)
    still draws it."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="quality-latency" viewBox="0 0 {scene.width} '
            f'{scene.height}" width="{scene.width}" height="{scene.height}" role="img" '
            f'font-family={quoteattr(FONT)} font-size="{LEGEND_SIZE}">')
    body = [f"<title>{escape(scene.title)}</title>",
            f'<rect width="{scene.width}" height="{scene.height}" fill="{PAPER}"/>']
    body += [_svg(mark) for mark in scene.marks]
    return head + "".join(body) + "</svg>"


def _svg(mark) -> str:
    if isinstance(mark, Group):
        hover = "" if mark.hover is None else (
            f'<rect x="{mark.hover.x:.1f}" y="{mark.hover.y:.1f}" width="{mark.hover.w:.1f}" '
            f'height="{mark.hover.h:.1f}" fill="{PAPER}" fill-opacity="0"/>')
        return (f'<g class="{mark.kind}" data-model={quoteattr(mark.model)}><title>{escape(mark.title)}</title>'
                + hover + "".join(_svg(inner) for inner in mark.marks) + "</g>")
    if isinstance(mark, Line):
        dash = ' stroke-dasharray="5 3"' if mark.dashed else ""
        return (f'<line x1="{mark.x1:.1f}" y1="{mark.y1:.1f}" x2="{mark.x2:.1f}" y2="{mark.y2:.1f}" '
                f'stroke="{mark.color}" stroke-width="{mark.width}"{dash}/>')
    if isinstance(mark, Dot):
        return (f'<circle cx="{mark.x:.1f}" cy="{mark.y:.1f}" r="{mark.radius}" fill="{mark.color}" '
                f'stroke="{PAPER}" stroke-width="1"/>')
    if isinstance(mark, Badge):
        box = mark.box
        return (f'<g class="badge"><rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
                f'rx="4" fill="{mark.color}"/>' + _svg(badge_text(mark)) + "</g>")
    anchor = f' text-anchor="{mark.anchor}"' if mark.anchor != "start" else ""
    weight = ' font-weight="700"' if mark.bold else ""
    return (f'<text x="{mark.x:.1f}" y="{mark.y:.1f}" font-size="{mark.size}" fill="{mark.color}"{anchor}{weight}>'
            f"{escape(mark.text)}</text>")


def badge_text(badge: Badge) -> Text:
    box = badge.box
    return Text(box.x + box.w / 2, box.y + box.h / 2 + BADGE_SIZE * 0.36, str(badge.number), BADGE_SIZE, PAPER,
                "middle", bold=True)
