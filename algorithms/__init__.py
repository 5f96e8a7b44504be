"""Reference implementations of memory-efficient optimizers, one method per module.

Every public module is imported here so that its classes join :data:`REGISTRY`. Modules whose
name starts with ``_`` hold shared machinery (validation, the base contract, projections,
subset partitions).
"""

from __future__ import annotations

import importlib
import pkgutil

from ._base import NonFiniteGradientError, ReferenceOptimizer
from ._registry import REGISTRY, make, register

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["REGISTRY", "make", "register", "ReferenceOptimizer", "NonFiniteGradientError"]
