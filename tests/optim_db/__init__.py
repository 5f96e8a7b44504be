"""The optimizer database driving the shared contract battery (tests/test_contract.py).

In the spirit of torch's ``OptimizerInfo`` (torch/testing/_internal/common_optimizers.py): every
registered optimizer has one :class:`OptimizerInfo`, declared in a module of this package (one
module per family, e.g. ``core.py``, ``mars.py``), which lists

* ``inputs``: constructor kwargs to exercise (small refresh gaps so refreshes happen within a
  few steps; every variant);
* ``error_inputs``: bad hyperparameters, with the error type and a regex naming the argument;
* ``fp32_state_keys``: state keys allowed to stay float32 for a float64 parameter (only where
  ``variant="official"`` must reproduce the authors' float32 decompositions; documented there).

Modules are discovered automatically; each exposes ``INFOS: list[OptimizerInfo]``.
``bad_inputs.py`` (no ``INFOS``) holds the bad-input matrix run by tests/test_bad_inputs.py.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptimizerInput:
    kwargs: dict[str, Any]
    desc: str = "default"
    #: True when ``step()`` needs a closure (e.g. MARS-exact evaluates the gradient at two points);
    #: the battery then steps every optimizer through ``step(closure)`` (torch's ``step_requires_closure``)
    step_requires_closure: bool = False


@dataclass(frozen=True)
class ErrorInput:
    kwargs: dict[str, Any]
    error_type: type
    match: str  # regex that must appear in the message (normally the argument's name)


@dataclass
class OptimizerInfo:
    name: str
    inputs: list[OptimizerInput]
    error_inputs: list[ErrorInput] = field(default_factory=list)
    #: kwargs for the "goes the right direction" test (a step size that descends in 30 steps)
    descent_kwargs: dict[str, Any] | None = None
    #: state keys that may legitimately be float32 for a float64 parameter, per variant name
    fp32_state_keys: dict[str, frozenset[str]] = field(default_factory=dict)
    #: True when the optimizer draws random numbers (projections, sketches)
    uses_randomness: bool = False
    supports_complex: bool = False

    def ids(self) -> list[str]:
        return [f"{self.name}-{inp.desc}" for inp in self.inputs]


def _collect() -> dict[str, OptimizerInfo]:
    db: dict[str, OptimizerInfo] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for oi in getattr(mod, "INFOS", []):
            if oi.name in db:
                raise ValueError(f"duplicate OptimizerInfo for {oi.name}")
            db[oi.name] = oi
    return db


OPTIM_DB: dict[str, OptimizerInfo] = _collect()


def all_inputs() -> list[tuple[OptimizerInfo, OptimizerInput]]:
    return [(info, inp) for info in OPTIM_DB.values() for inp in info.inputs]


def input_ids() -> list[str]:
    return [f"{info.name}[{inp.desc}]" for info, inp in all_inputs()]
