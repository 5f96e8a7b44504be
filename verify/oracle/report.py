"""The oracle's report: the verdict, the first failure explained, per-step series, the defaults diff.

The JSON form (:meth:`OracleReport.to_json`) is strict JSON (``allow_nan=False``): an error that is
not a number (a non-finite candidate value, a shape mismatch, a crashed step) is ``null`` in the
series and explained in ``first_failure``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .hyperparams import HyperparameterDiff

__all__ = ["Failure", "OracleReport", "PARAMS"]

PARAMS = "params"


@dataclass
class Failure:
    """The first tolerance violation: when, what, where, by how much."""

    step: int
    quantity: str  # "params", "state[<reference key>]" or "step()"
    param_index: int | None
    param_name: str | None
    shape: tuple[int, ...] | None
    error: float | None  # None: not a number (non-finite values, shape mismatch, a crash)
    rtol: float
    reason: str

    def describe(self) -> str:
        where = "" if self.param_index is None else f" of {self.param_name!r} (index {self.param_index}, shape {self.shape})"
        return f"step {self.step}, {self.quantity}{where}: {self.reason}"


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@dataclass
class OracleReport:
    reference: str
    candidate: str
    dtype: str
    steps: int
    gradients: str
    rtol: float
    seed: int = 0
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    param_names: list[str] = field(default_factory=list)
    #: every value the oracle chose or filled in, in words
    settings: list[str] = field(default_factory=list)
    #: the compared quantities: "params", then "state[key]" per mapped key (key -> candidate key)
    state_map: dict[str, str] = field(default_factory=dict)
    #: quantity -> parameter name -> error at each compared step (None where not a number)
    series: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    #: the 1-based steps the series refer to (every step, or a trace's recorded steps)
    compared_steps: list[int] = field(default_factory=list)
    failure: Failure | None = None
    hyperparameters: HyperparameterDiff = field(default_factory=HyperparameterDiff)
    hints: list[str] = field(default_factory=list)
    trace: str | None = None

    # ------------------------------------------------------------------ verdict
    @property
    def passed(self) -> bool:
        """No failure, and something was compared (an empty comparison never passes)."""
        return self.failure is None and bool(self.compared_steps) and bool(self.series.get(PARAMS))

    @property
    def first_failure(self) -> int | None:
        """1-based step of the first failure (None when passed)."""
        return None if self.failure is None else self.failure.step

    def quantity_max(self, quantity: str) -> list[float]:
        """Per compared step, the largest error over parameters (``inf`` where one is not a number)."""
        per_param = self.series.get(quantity, {})
        out = []
        for k in range(len(self.compared_steps)):
            vals = [s[k] for s in per_param.values() if k < len(s)]
            if not vals:
                break
            out.append(math.inf if any(v is None for v in vals) else max(vals))
        return out

    @property
    def param_err(self) -> list[float]:
        """Per compared step, the largest parameter error (``inf`` where a value is not a number)."""
        return self.quantity_max(PARAMS)

    @property
    def state_err(self) -> dict[str, list[float]]:
        return {key: self.quantity_max(f"state[{key}]") for key in self.state_map}

    # ------------------------------------------------------------------ text
    def _max_line(self, quantity: str) -> str:
        errs = self.quantity_max(quantity)
        label = quantity if quantity == PARAMS else f"{quantity} (candidate {self.state_map[quantity[6:-1]]!r})"
        if not errs:
            return f"  {label}: not compared"
        worst = max(errs)
        k = errs.index(worst)
        value = "not a number" if math.isinf(worst) else f"{worst:.3e}"
        return f"  {label}: max rel err {value} (step {self.compared_steps[k]})"

    def summary(self, *, explain: bool | None = None) -> str:
        """The report in words. ``explain`` adds the hyperparameters that differ and the hints; by
        default it is on for a failure at step 1 (nearly always a convention), or for any failure
        while a hyperparameter differs or the reference runs its paper variant by default."""
        if self.failure is not None:
            verdict = f"FAIL at step {self.failure.step}"
        elif not self.passed:
            verdict = "FAIL (nothing was compared)"
        else:
            verdict = "PASS"
        source = f"trace {self.trace}" if self.trace else f"reference {self.reference}"
        lines = [
            f"oracle: {self.candidate} vs {source} ({self.dtype}, {self.steps} steps, {self.gradients} gradients, "
            f"rtol {self.rtol:g}): {verdict}"
        ]
        if self.failure is not None:
            lines.append(f"  first failure: {self.failure.describe()}")
        for quantity in self.series:
            lines.append(self._max_line(quantity))
        if self.settings:
            lines.append("  settings: " + "; ".join(self.settings))
        if explain is None:
            explain = self.failure is not None and (
                self.failure.step == 1 or bool(self.hyperparameters.differences) or any("variant" in h for h in self.hints))
        if explain:
            lines.extend(self._explanation())
        return "\n".join(lines)

    def _explanation(self) -> list[str]:
        hp = self.hyperparameters
        lines = []
        if hp.differences:
            lines.append("  hyperparameters that differ (effective values; a first-step failure is usually one of these):")
            lines.extend(f"    {d.describe(len(self.param_names))}" for d in hp.differences)
        else:
            lines.append("  no hyperparameter with a common name differs (compare the one-sided ones below)")
        for side, values in (("reference", hp.reference_only), ("candidate", hp.candidate_only)):
            if values:
                shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
                lines.append(f"  only the {side} has: {shown}")
        lines.extend(f"  hint: {h}" for h in self.hints)
        return lines

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        failure = None
        if self.failure is not None:
            f = self.failure
            failure = {"step": f.step, "quantity": f.quantity, "param_index": f.param_index, "param_name": f.param_name,
                       "shape": list(f.shape) if f.shape is not None else None, "error": _finite_or_none(f.error),
                       "rtol": f.rtol, "reason": f.reason}
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "trace": self.trace,
            "dtype": self.dtype,
            "steps": self.steps,
            "gradients": self.gradients,
            "rtol": self.rtol,
            "seed": self.seed,
            "shapes": [list(s) for s in self.shapes],
            "param_names": self.param_names,
            "settings": self.settings,
            "state_map": self.state_map,
            "passed": self.passed,
            "first_failure": failure,
            "max_error": {q: [_finite_or_none(x) for x in self.quantity_max(q)] for q in self.series},
            "compared_steps": self.compared_steps,
            "series": {q: {n: [_finite_or_none(x) for x in s] for n, s in per.items()} for q, per in self.series.items()},
            "hyperparameters": self.hyperparameters.to_dict(),
            "hints": self.hints,
        }

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)
