"""The figure registry behind ``verify figures``: every figure is regenerated from saved result files.

A figure function reads result files and writes image files; it never reruns an experiment.
Register one with the decorator, in any module that ``verify figures`` discovers::

    from verify.figures import figure

    @figure("rates", results="results/rates", description="log-log rate plots with quantile bands")
    def rate_figures(results_dir: Path, out_dir: Path | None) -> list[Path]:
        ...                                   # read results_dir, write PNGs, return their paths

``out_dir`` is ``None`` unless the caller overrides it: the function then chooses (conventionally
``<results_dir>/figures``). Use the Agg backend (:func:`use_agg`); the command sets it too.

**Discovery** (:func:`discover`): for each package it is given (the command passes :mod:`verify` and
:mod:`paper_checks`), every module ``<package>/<sub-package>/figures.py`` and every top-level module
``<package>/*_figures.py`` is imported, so adding a figure never touches this file or the command.
This module imports no package above it: the command names the packages.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable

__all__ = ["figure", "FigureSpec", "FIGURES", "discover", "use_agg", "make"]


@dataclass(frozen=True)
class FigureSpec:
    name: str
    results: str
    description: str
    fn: Callable[[Path, Path | None], list[Path]]


FIGURES: dict[str, FigureSpec] = {}

def figure(name: str, *, results: str, description: str = ""):
    """Register ``fn(results_dir, out_dir) -> [paths]`` under ``name``."""

    def decorate(fn):
        if name in FIGURES and FIGURES[name].fn is not fn:
            raise ValueError(f"figure {name!r} is already registered by {FIGURES[name].fn.__module__}")
        FIGURES[name] = FigureSpec(name, results, description or (fn.__doc__ or "").strip().split("\n")[0], fn)
        return fn

    return decorate


def use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)


def discover(packages: Iterable[ModuleType] = ()) -> dict[str, FigureSpec]:
    """Import every figure module of :mod:`verify` and of ``packages`` (see the module docstring) and
    return the registry."""
    import verify

    for package in (verify, *packages):
        for root in package.__path__:
            root = Path(root)
            for info in pkgutil.iter_modules([str(root)]):
                if info.ispkg and (root / info.name / "figures.py").exists():
                    importlib.import_module(f"{package.__name__}.{info.name}.figures")
                elif not info.ispkg and info.name.endswith("_figures"):
                    importlib.import_module(f"{package.__name__}.{info.name}")
    return FIGURES


def make(names: list[str] | None = None, *, root: str | Path = ".", out_dir: str | Path | None = None,
         echo=print, packages: Iterable[ModuleType] = ()) -> dict[str, list[Path] | str]:
    """Run the registered figure functions (of :mod:`verify` and ``packages``) whose results exist;
    ``{name: paths or the reason it was skipped}``."""
    use_agg()
    registry = discover(packages)
    unknown = sorted(set(names or []) - set(registry))
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; registered: {sorted(registry)}")
    out: dict[str, list[Path] | str] = {}
    for name, spec in sorted(registry.items()):
        if names and name not in names:
            continue
        results_dir = Path(root) / spec.results
        if not results_dir.exists():
            out[name] = f"skipped: no results at {results_dir}"
            echo(f"[skip] {name}: no results at {results_dir}")
            continue
        try:
            paths = spec.fn(results_dir, Path(out_dir) / name if out_dir else None)
        except Exception as exc:  # one broken figure does not stop the others; it is reported
            out[name] = f"error: {type(exc).__name__}: {exc}"
            echo(f"[FAIL] {name}: {type(exc).__name__}: {exc}")
            continue
        out[name] = list(paths)
        echo(f"[ok]   {name}: {len(out[name])} file(s)")
    return out
