"""The default check suite run by ``verify check`` (and ``make check``).

A check is a function ``fn(quick) -> Outcome`` (:class:`verify.verdicts.Outcome`); ``@check(name, group,
provenance=...)`` adds it. Each result is gated by its provenance tag and printed in the one vocabulary
of :mod:`verify.verdicts` (``docs/verdicts.md``); a check that raises is an ERROR. Modules that define
checks live in :mod:`verify.checks` (one per topic) and are discovered and imported lazily, so adding a
check never touches this file.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from .verdicts import Outcome, gated_row, parse_tag

__all__ = ["Check", "CHECKS", "check", "load_checks", "run_suite"]


@dataclass(frozen=True)
class Check:
    name: str
    group: str
    fn: Callable[[bool], Outcome]  #: fn(quick) -> Outcome
    provenance: str = "D"

    def __post_init__(self) -> None:
        parse_tag(self.provenance)


CHECKS: list[Check] = []


def check(name: str, group: str, *, provenance: str = "D"):
    """Register ``fn(quick) -> Outcome`` as a suite check. The default tag [D]: the identities, constants and
    formulas of the suite are derived here (written out in the check)."""

    def decorate(fn):
        CHECKS.append(Check(name, group, fn, provenance))
        return fn

    return decorate


def load_checks() -> list[Check]:
    from . import checks, methods

    methods.load()
    for info in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{checks.__name__}.{info.name}")
    return CHECKS


def run_suite(groups: list[str] | None = None, quick: bool = True, echo=print) -> list[dict[str, Any]]:
    """Run the checks of ``groups`` (all when None) and return their result rows (:func:`verify.verdicts.gated_row`)."""
    rows = []
    for c in load_checks():
        if groups and c.group not in groups:
            continue
        row, _ = gated_row(c.name, lambda: c.fn(quick), c.provenance, group=c.group)
        rows.append(row)
        echo(f"[{row['verdict']}] {c.group:<10} {c.name}  ({row['seconds']:.1f}s)  {row['reason']}")
    return rows
