"""The default check suite run by ``verify check`` (and ``make check``).

A check is a function returning ``(passed: bool, detail: str)``; ``@check(name, group)`` adds it.
Modules that define checks live in :mod:`verify.checks` (one per topic) and are discovered and
imported lazily, so adding a check never touches this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from dataclasses import dataclass
from typing import Callable

@dataclass
class Check:
    name: str
    group: str
    fn: Callable[[bool], tuple[bool, str]]  # fn(quick) -> (passed, detail)


CHECKS: list[Check] = []


def check(name: str, group: str):
    def decorate(fn):
        CHECKS.append(Check(name, group, fn))
        return fn

    return decorate


def load_checks() -> list[Check]:
    from . import checks

    for info in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
        importlib.import_module(f"{checks.__name__}.{info.name}")
    return CHECKS


def run_suite(groups: list[str] | None = None, quick: bool = True, echo=print) -> list[dict]:
    rows = []
    for c in load_checks():
        if groups and c.group not in groups:
            continue
        t0 = time.perf_counter()
        try:
            passed, detail = c.fn(quick)
        except Exception as exc:  # a crashing check is a failed check, reported, not hidden
            passed, detail = False, f"error: {type(exc).__name__}: {exc}"
        dt = time.perf_counter() - t0
        rows.append({"group": c.group, "check": c.name, "passed": passed, "detail": detail, "seconds": round(dt, 2)})
        echo(f"[{'PASS' if passed else 'FAIL'}] {c.group:<10} {c.name}  ({dt:.1f}s)  {detail}")
    return rows
