"""How the report and its chart write numbers, and in which order they list models.

One convention everywhere: a test metric in points (x 100) with 2 decimals, a difference signed ("+1.25"),
milliseconds and speed-ups with 3 significant figures ("86.8", "0.205", "166x"), and never "-0.000".
"""
from __future__ import annotations

import math

from bertdistill.names import TEACHER_ROWS


def fixed(value: float, digits: int) -> str:
    """`value` with `digits` decimals; one that rounds to zero has no minus sign."""
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def signed(value: float, digits: int) -> str:
    """`value` with its sign and `digits` decimals; one that rounds to zero reads "+0.00"."""
    text = f"{value:+.{digits}f}"
    return "+" + text[1:] if float(text) == 0 else text


def points(fraction: float) -> str:
    """A metric in [0, 1] as points: 0.79663 -> "79.66"."""
    return fixed(100 * fraction, 2)


def signed_points(difference: float) -> str:
    return signed(100 * difference, 2)


def significant(value: float, figures: int = 3) -> str:
    """`figures` significant figures without an exponent: 86.8, 0.205, 0.0890; whole numbers keep every digit."""
    if value == 0 or not math.isfinite(value):
        return fixed(value, figures - 1)
    magnitude = math.floor(math.log10(abs(float(f"{value:.{figures}g}"))))  # after rounding: 9.996 -> 10.0
    return fixed(value, max(0, figures - 1 - magnitude))


def ms(value: float) -> str:
    """Milliseconds, 3 significant figures (the unit is the caller's)."""
    return significant(value)


def speedup(ratio: float) -> str:
    return f"{significant(ratio)}x"


def leaderboard_order(entries: list[dict], metric: str) -> list[dict]:
    """Teacher rows first (PyTorch, ONNX, int8), then the best test metric first: the tables' and the chart's order."""
    teacher_order = {name: i for i, name in enumerate(TEACHER_ROWS)}
    return sorted(entries, key=lambda e: (e["role"] != "teacher", teacher_order.get(e["name"], len(TEACHER_ROWS)),
                                          -e["metrics"][metric]))
