"""Claims as data: each paper's statements, where they come from, and the check that tests them.

A :class:`Claim` names the paper, the place (table, theorem, equation), the provenance tag of
../shared/specs/README.md ([P] paper text, [C] authors' code, [F] authors' figure, [D] derived,
[U] unverified reconstruction, [S] secondary, [BG] background), the statement, and a check.

Verdicts: ``PASS`` / ``FAIL`` (the code or the claim is wrong, with the reason), ``REPORT`` (a
measured number for a claim that is not assertable: [U], [S], or "report only" in the spec), and
``INCONCLUSIVE`` (the measurement cannot decide). A claim with provenance [U] or [S] can never
``PASS``: :func:`run_claim` turns such a PASS into REPORT ("consistent with the reconstruction").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

VERDICTS = ("PASS", "FAIL", "REPORT", "INCONCLUSIVE")
ASSERTABLE = {"[P]", "[C]", "[V]", "[D]", "[F]", "[BG]", "[M]"}


@dataclass
class Outcome:
    verdict: str
    detail: str
    numbers: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclass
class Claim:
    id: str
    paper: str
    where: str
    provenance: str
    statement: str
    check: Callable[[bool], Outcome]  # check(quick) -> Outcome


CLAIMS: list[Claim] = []


def claim(id: str, paper: str, where: str, provenance: str, statement: str):
    """Decorator registering ``fn(quick) -> Outcome`` as the check of a claim."""

    def decorate(fn):
        if any(c.id == id for c in CLAIMS):
            raise ValueError(f"duplicate claim id {id!r}")
        CLAIMS.append(Claim(id, paper, where, provenance, statement, fn))
        return fn

    return decorate


def run_claim(c: Claim, quick: bool = True) -> dict:
    t0 = time.perf_counter()
    try:
        out = c.check(quick)
    except Exception as exc:  # a crashing check is reported as a failure, never hidden
        out = Outcome("FAIL", f"check raised {type(exc).__name__}: {exc}")
    verdict = out.verdict
    detail = out.detail
    if verdict == "PASS" and c.provenance not in ASSERTABLE:
        verdict, detail = "REPORT", f"consistent with the {c.provenance} reconstruction (not a confirmation): {detail}"
    return {
        "id": c.id, "paper": c.paper, "where": c.where, "provenance": c.provenance, "statement": c.statement,
        "verdict": verdict, "detail": detail, "numbers": out.numbers, "seconds": round(time.perf_counter() - t0, 2),
    }


def load_claims() -> list[Claim]:
    """Import every claims module of :mod:`paper_checks` (``paper_checks/*/claims.py`` and
    ``paper_checks/claims_*.py``), which registers its claims, and return them all."""
    import importlib
    import pkgutil

    import paper_checks

    for info in sorted(pkgutil.walk_packages(paper_checks.__path__, "paper_checks."), key=lambda m: m.name):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf == "claims" or leaf.startswith("claims_"):
            importlib.import_module(info.name)
    return CLAIMS
