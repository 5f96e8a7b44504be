"""Shared wording of the report: values, verdict meanings and the page's fixed text."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["value_text", "split_numbers", "VERDICT_MEANING", "TITLE", "HOW_TO_READ", "REGENERATE"]

TITLE = "What optverify says about each paper"
REGENERATE = ("verify report  # rebuilds this page from results/ (no engine is rerun); "
              "verify report --refresh-variants also reruns the paper-vs-code comparisons (seconds)")
HOW_TO_READ = (
    "Each row is one claim of a paper: where the paper makes it, its provenance tag, what was claimed, what "
    "optverify measured in its saved results, the verdict and the reason. A claim whose tag may be asserted "
    "(P, C, V, D, M, BG) gets PASS, FAIL or INCONCLUSIVE; any other claim (reconstructed or second-hand: A, F, "
    "T, S, U), and any check without measured power, is reported as CONSISTENT, INCONSISTENT, INCONCLUSIVE or "
    "MEASURED and never passes or fails. ERROR means a check could not read its result. GPU claims are "
    "measured at a scaled-down setting and reported.")

VERDICT_MEANING = {
    "PASS": "asserted: the measurement (with its interval) is inside the claimed region",
    "FAIL": "asserted: it is outside, decisively",
    "INCONCLUSIVE": "the measurement cannot decide (or the claim is not checked here, with the reason)",
    "ERROR": "the check could not run (a missing or unreadable result); an asserted ERROR counts as a failure",
    "CONSISTENT": "reported: the measurement agrees with a claim that cannot be asserted",
    "INCONSISTENT": "reported: the measurement disagrees with a claim that cannot be asserted",
    "MEASURED": "a number with no target, reported",
}


def value_text(value: Any, depth: int = 0) -> str:
    """A compact, deterministic rendering of a claim's number (nested dicts and lists included)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        text = "; ".join(f"{k}: {value_text(v, depth + 1)}" for k, v in value.items())
        return f"({text})" if depth else text
    return str(value)


def split_numbers(numbers: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """``(claimed, measured, the other numbers)`` of a claim; a check that names no ``measured`` value
    (e.g. a comparison of two runs) shows its numbers as the measurement."""
    numbers = dict(numbers or {})
    claimed = numbers.pop("claimed", None)
    if "measured" in numbers:
        return claimed, numbers.pop("measured"), numbers
    return claimed, (numbers or None), {}
