"""Each method family's verification, declared in one place.

A module here (``baselines``, ``sn_sm``, ``galore_fira``, ``ldadam_adarankgrad``, ``mars``) holds, for
its optimizers:

* the **memory formulas** (:func:`verify.memory.formulas.formula`): the state each parameter keeps and the
  temporaries of one step, written from the papers without calling the optimizer;
* the **theorems** (:func:`verify.rates.theorems.declare`): assumptions, bound, schedule, provenance;
* the **rate cells and checks** (:func:`verify.rates.cells.rate_entry`): the family's place in each
  experiment (figure) of ``verify rates``;
* the **mutants** (:func:`verify.rates.mutants.declare`): the planted bugs its rate checks must FAIL;
* the **identity checks** of ``verify check`` (:func:`verify.suite.check`).

The engines collect from here: reading a registry (``FORMULAS``, ``THEOREMS``, ``MUTANTS``, the rate
entries, the suite's checks) imports every module of this package first (:func:`load`), so a new method
needs its algorithm module, a module here (or entries in its family's), its optimizer-database entry
(``tests/optim_db``) and its tests — no engine file changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

__all__ = ["load", "Registry"]

_loaded: list[ModuleType] | None = None
_loading = False
_after_load: list[Callable[[], None]] = []


def load() -> list[ModuleType]:
    """Import every family module of :mod:`verify.methods` (once; in name order) and return them."""
    global _loaded, _loading
    if _loaded is not None or _loading:
        return _loaded or []
    _loading = True
    try:
        modules = [importlib.import_module(f"{__name__}.{info.name}")
                   for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
                   if not info.name.startswith("_")]
        for hook in _after_load:
            hook()
        _loaded = modules
    finally:
        _loading = False
    return modules


T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A ``name → declaration`` table that the method modules fill; reading it loads them first (:func:`load`).

    ``after_load`` runs once every module is imported (entries derived from all of them, e.g. a generic
    mutant per registered optimizer)."""

    def __init__(self, what: str, after_load: Callable[["Registry[T]"], None] | None = None) -> None:
        self.what = what
        self._items: dict[str, T] = {}
        if after_load is not None:
            _after_load.append(lambda: after_load(self))

    def add(self, key: str, value: T) -> T:
        if key in self._items and self._items[key] is not value:
            raise ValueError(f"duplicate {self.what} {key!r}")
        self._items[key] = value
        return value

    def __getitem__(self, key: str) -> T:
        load()
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        load()
        return iter(self._items)

    def __len__(self) -> int:
        load()
        return len(self._items)

    def __contains__(self, key: Any) -> bool:
        load()
        return key in self._items

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self._items)} entries)"
