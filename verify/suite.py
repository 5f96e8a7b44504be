"""The default check suite run by ``verify check`` (and ``make check``).

A check is a function returning ``(passed: bool, detail: str)``; ``@check(name, group)`` adds it.
Modules that define checks are listed in :data:`CHECK_MODULES` and imported lazily.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Callable

CHECK_MODULES = ["verify.suite_checks"]


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
    for mod in CHECK_MODULES:
        importlib.import_module(mod)
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
