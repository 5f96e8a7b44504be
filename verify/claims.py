"""Claims as data: a paper's statement, where it is, its provenance tag, and the check that tests it.

A :class:`Claim` is content (it lives in :mod:`paper_checks`, one module per paper); this module is
the engine that registers, runs and gates claims. A claim's check reads saved results (it never
reruns an engine) and returns a :class:`verify.verdicts.Outcome`, with ``numbers`` holding at least
what was claimed and what was measured where both exist. :func:`run_claim` passes the outcome
through :func:`verify.verdicts.gate`, so a claim whose tag is not assertable is reported, never passed.

.. code-block:: python

    from verify.claims import claim
    from verify.verdicts import Outcome

    @claim("galore.lemma-3.3", paper="GaLore, arXiv 2403.03507", where="Lemma 3.3", provenance="P", kind="rank",
           statement="the stable rank of the gradient decays geometrically")
    def _(quick: bool) -> Outcome:
        ...
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from .verdicts import Outcome, gated_row, parse_tag

__all__ = ["KINDS", "Claim", "CLAIMS", "claim", "register", "run_claim", "load_claims"]

#: what a claim is about (the report groups by it)
KINDS = ("rate", "rank", "memory", "identity", "gpu", "code-vs-paper", "behaviour")


@dataclass(frozen=True)
class Claim:
    key: str
    paper: str
    where: str  #: theorem / table / figure / section, in the paper's own numbering
    provenance: str
    statement: str
    kind: str
    check: Callable[[bool], Outcome]  #: check(quick) -> Outcome
    #: figures that support the claim, as paths relative to ``results/`` (shown by ``verify report``)
    figures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parse_tag(self.provenance)
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.key}: kind must be one of {KINDS}, got {self.kind!r}")
        if isinstance(self.figures, str) or not all(isinstance(f, str) and f for f in self.figures):
            raise TypeError(f"claim {self.key}: figures must be a tuple of paths relative to results/")


CLAIMS: dict[str, Claim] = {}


def claim(key: str, *, paper: str, where: str, provenance: str, statement: str, kind: str,
          figures: tuple[str, ...] = ()):
    """Decorator registering ``fn(quick) -> Outcome`` as the check of a claim."""

    def decorate(fn: Callable[[bool], Outcome]):
        register(Claim(key, paper, where, provenance, statement, kind, fn, tuple(figures)))
        return fn

    return decorate


def register(c: Claim) -> Claim:
    """Register a claim built as data (e.g. one per row of a result table); a second claim with the
    same key from another check is an error (re-importing the same module is not)."""
    old = CLAIMS.get(c.key)
    if old is not None and (old.check.__module__, old.check.__qualname__) != (c.check.__module__, c.check.__qualname__):
        raise ValueError(f"duplicate claim key {c.key!r}")
    CLAIMS[c.key] = c
    return c


def run_claim(c: Claim, quick: bool = True) -> dict:
    """Run one claim's check and gate it (:func:`verify.verdicts.gated_row`, which also honours an outcome that
    says it is not assessed); a check that raises is an ERROR (a failure when asserted). The row carries the
    claim's figures."""
    row, _ = gated_row(c.key, lambda: c.check(quick), c.provenance, paper=c.paper, where=c.where, kind=c.kind,
                       statement=c.statement)
    seconds = row.pop("seconds")
    return {**row, "figures": list(c.figures), "seconds": seconds}


def load_claims(package: ModuleType | str) -> list[Claim]:
    """Import the claim modules of ``package`` and return the claims they define, in key order.

    Claim modules are the package's public top-level modules (one per paper) and the ``claims``
    module of each sub-package (e.g. ``paper_checks.gpu_lm.claims``).
    """
    if isinstance(package, str):
        package = importlib.import_module(package)
    prefix = package.__name__ + "."
    for info in sorted(pkgutil.walk_packages(package.__path__, prefix), key=lambda m: m.name):
        parts = info.name[len(prefix):].split(".")
        if parts[-1].startswith("_") or info.ispkg:
            continue
        if len(parts) == 1 or parts[-1] == "claims":
            importlib.import_module(info.name)
    return sorted((c for c in CLAIMS.values() if c.check.__module__.startswith(prefix)), key=lambda c: c.key)
