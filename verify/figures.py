"""The figure registry behind ``verify figures``: every figure is regenerated from saved result files.

A figure function reads result files and writes image files; it never reruns an experiment.
Register one with the decorator, in any module that ``verify figures`` discovers::

    from verify.figures import figure

    @figure("rates", results="results/rates", description="log-log rate plots with quantile bands")
    def rate_figures(results_dir: Path, out_dir: Path | None) -> list[Path]:
        ...                                   # read results_dir, write PNGs, return their paths

``out_dir`` is ``None`` unless the caller overrides it: the function then chooses (conventionally
``<results_dir>/figures``). Use the Agg backend (:func:`use_agg`); the command sets it too.

**Discovery** (:func:`discover`): every module ``verify/<package>/figures.py`` and every top-level
module ``verify/*_figures.py`` is imported, so adding a figure never touches this file or the
command. Modules that already have a ``make_figures(results_dir, out_dir)`` function elsewhere can
be listed in :data:`EXTERNAL` as ``name: ("module:function", results_dir)``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["figure", "FigureSpec", "FIGURES", "EXTERNAL", "discover", "use_agg", "make"]


@dataclass(frozen=True)
class FigureSpec:
    name: str
    results: str
    description: str
    fn: Callable[[Path, Path | None], list[Path]]


FIGURES: dict[str, FigureSpec] = {}

#: figure functions that live outside a discovered module (resolved lazily)
EXTERNAL: dict[str, tuple[str, str]] = {
    "rank": ("verify.rank_checks:make_figures", "results/rank"),
    "gpu_lm": ("paper_checks.gpu_lm.figures:make_figures", "results/gpu_lm"),
}


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


def _resolve_external(target: str) -> Callable:
    module, _, attr = target.partition(":")
    fn = getattr(importlib.import_module(module), attr)

    def call(results_dir: Path, out_dir: Path | None) -> list[Path]:
        return list(fn(results_dir, out_dir if out_dir is not None else Path(results_dir) / "figures"))

    return call


def discover() -> dict[str, FigureSpec]:
    """Import every figure module (see the module docstring) and return the registry."""
    import verify

    root = Path(verify.__file__).parent
    for info in pkgutil.iter_modules([str(root)]):
        if info.ispkg and (root / info.name / "figures.py").exists():
            importlib.import_module(f"verify.{info.name}.figures")
        elif not info.ispkg and info.name.endswith("_figures"):
            importlib.import_module(f"verify.{info.name}")
    for name, (target, results) in EXTERNAL.items():
        if name not in FIGURES:
            FIGURES[name] = FigureSpec(name, results, f"{target} (external)", _LazyExternal(target))
    return FIGURES


class _LazyExternal:
    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self, results_dir: Path, out_dir: Path | None) -> list[Path]:
        return _resolve_external(self.target)(results_dir, out_dir)


def make(names: list[str] | None = None, *, root: str | Path = ".", out_dir: str | Path | None = None,
         echo=print) -> dict[str, list[Path] | str]:
    """Run the registered figure functions whose results exist; ``{name: paths or the reason it was skipped}``."""
    use_agg()
    registry = discover()
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
