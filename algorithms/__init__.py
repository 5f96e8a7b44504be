"""Reference implementations of memory-efficient optimizers, one method per module.

Every public module is imported here so that its classes join :data:`REGISTRY`. Besides one module
per method, the public modules hold the machinery other packages use: :mod:`.validation` (argument
checks with clear errors), :mod:`.projection` (sides, SVD bases, projections), :mod:`.subsets`
(Subset-Norm partitions), :mod:`.mars` (MARS's Algorithm 1) and :mod:`.grouping` (each paper's
routing). Modules whose name starts with ``_`` are internal to the package.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._base import NonFiniteGradientError, ReferenceOptimizer, param_seed
from ._registry import REGISTRY, make, register

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["REGISTRY", "make", "register", "ReferenceOptimizer", "NonFiniteGradientError", "param_seed"]
