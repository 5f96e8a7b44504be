r"""Run one :class:`~verify.rates.spec.Cell` with :func:`synthetic.run` and return its result row.

* **Anytime schedules** (η independent of the horizon): one run of :math:`\max T` steps recorded at
  every horizon, so horizon :math:`T` is the prefix of the same trajectories (the running mean at
  step T is :math:`R_T`).
* **Fixed-horizon schedules** (η = η0/√T): one run per horizon, each recorded at its last step.

Seeds are the runner's counter-based streams ``master_seed·SEED_STRIDE + i``, so two cells with
the same master seed, problem and noise see the same noise draws (paired comparisons).

**Algorithms that are not in the registry** (planted-bug mutants, ``"mutant:<name>"``, and the
MARS theory schedule's learning-rate wrapper) are handed to :func:`synthetic.run` as classes; the
registry is never touched.

**Learning-rate schedules.** The runner has no LR-scheduler hook, so the ``mars_theory`` schedule
wraps the optimizer class (:func:`with_lr_schedule`): before each step every group's ``lr`` is set
to :math:`\eta_t` at the group's 1-based step, the value a ``LambdaLR`` would give.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable

import numpy as np
import torch

import algorithms
from synthetic import Oracle, run

from .problems import build_noise, build_problem, noise_constants
from .spec import Cell

__all__ = ["run_cell", "with_lr_schedule", "resolve_algorithm", "horizon_hyper", "horizon_eta", "mars_theory_eta",
           "running_metrics"]

_TUPLE_KEYS = ("betas", "betas_1d")


def with_lr_schedule(base: type, eta: Callable[[int], float]) -> type:
    """A subclass of ``base`` whose groups' ``lr`` is ``eta(t)`` at each group's 1-based step ``t``."""

    class LrScheduled(base):
        def step(self, closure=None):
            for group in self.param_groups:
                first = group["params"][0] if group["params"] else None
                state = self.state[first] if first is not None else {}
                t = int(state["step"]) + 1 if "step" in state else 1
                group["lr"] = float(eta(t))
            return super().step(closure)

    LrScheduled.__name__ = f"{base.__name__}LrScheduled"
    LrScheduled.__qualname__ = LrScheduled.__name__
    return LrScheduled


def resolve_algorithm(name: str) -> type:
    """The class behind a cell's algorithm: a registry name or ``"mutant:<name>"``."""
    if name.startswith("mutant:"):
        from .mutants import MUTANTS

        key = name.split(":", 1)[1]
        try:
            return MUTANTS[key].cls
        except KeyError:
            raise ValueError(f"unknown mutant {key!r}; known: {sorted(MUTANTS)}") from None
    try:
        return algorithms.REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; registered: {sorted(algorithms.REGISTRY)}") from None


def _plain_hyper(hyper: dict) -> dict:
    out = dict(hyper)
    for key in _TUPLE_KEYS:
        if key in out and isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def mars_theory_eta(schedule: dict) -> Callable[[int], float]:
    """η_t = η0·(s + t)^(−q) at the 1-based step t (q = 1/3: Theorem B.5's schedule)."""
    eta0, s, q = float(schedule["eta0"]), float(schedule["s"]), float(schedule.get("q", 1.0 / 3.0))
    return lambda t: eta0 * (s + t) ** (-q)


def horizon_eta(schedule: dict, T: int) -> float:
    """The constant step of a fixed-horizon run of T steps."""
    if schedule["kind"] == "inverse_sqrt_horizon":
        return float(schedule["eta0"]) / math.sqrt(T)
    if schedule["kind"] == "horizon_power":
        return float(schedule["eta_ref"]) * (float(schedule["T_ref"]) / T) ** float(schedule["p"])
    raise ValueError(f"schedule {schedule['kind']!r} is not a fixed-horizon schedule")


def horizon_hyper(cell: Cell, problem, T: int) -> dict[str, Any]:
    """The constructor arguments of the run for horizon ``T`` (JSON-able except scheduled callables)."""
    hyper = _plain_hyper(cell.hyper)
    kind = cell.schedule["kind"]
    if kind == "constant":
        hyper["lr"] = float(cell.schedule["eta"])
    elif kind == "one_over_L":
        hyper["lr"] = 1.0 / problem.L
    elif kind in ("inverse_sqrt_horizon", "horizon_power"):
        hyper["lr"] = horizon_eta(cell.schedule, T)
        if cell.schedule.get("beta2_horizon"):
            beta1 = hyper.get("betas", (0.9, 0.999))[0]
            hyper["betas"] = (beta1, 1.0 - 1.0 / T)
    elif kind == "mars_theory":
        eta = mars_theory_eta(cell.schedule)
        c = float(cell.schedule["c"])
        hyper["lr"] = eta(1)
        beta2 = cell.schedule.get("beta2", 0.99)
        beta2_value = (lambda t: 1.0 - eta(t) ** 6) if beta2 == "theory" else float(beta2)
        hyper["betas"] = (lambda t: 1.0 - min(1.0, c * eta(t) ** 2), beta2_value)
    elif kind == "anytime_power":
        hyper["lr"] = mars_theory_eta(cell.schedule)(1)
    return hyper


def _l21_sq(k: int) -> Callable:
    def metric(problem, x, grad):
        g = grad.reshape(grad.shape[0], -1)
        if g.shape[1] % k:
            raise ValueError(f"l21_subset {k} does not divide the dimension {g.shape[1]}")
        return torch.linalg.vector_norm(g.reshape(g.shape[0], -1, k), dim=2).sum(dim=1) ** 2

    return metric


def running_metrics(cell: Cell) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if {"avg_sq_grad", "min_sq_grad"} & set(cell.metrics):
        out["grad_norm_sq"] = "grad_norm_sq"
    if "avg_l1_sq" in cell.metrics:
        out["grad_l1_sq"] = "grad_l1_sq"
    if "avg_l21_sq" in cell.metrics:
        out["grad_l21_sq"] = _l21_sq(int(cell.l21_subset))
    return out


_TRACE_KEY = {"avg_sq_grad": "grad_norm_sq.mean", "min_sq_grad": "grad_norm_sq.min", "avg_l1_sq": "grad_l1_sq.mean",
              "avg_l21_sq": "grad_l21_sq.mean", "last_sq_grad": "grad_norm_sq"}


def recorded_metrics(cell: Cell) -> tuple[str, ...]:
    """Metrics recorded at the horizons themselves (not running averages): the last iterate's ‖∇f‖²."""
    return ("grad_norm_sq",) if "last_sq_grad" in cell.metrics else ()


def _one_run(cls: type, hyper: dict, problem, oracle, steps: int, seeds: list[int], record: list[int], running,
             recorded=()):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. subset fallbacks; the row records the hyperparameters
        return run(cls, hyper, problem, steps=steps, seeds=seeds, oracle=oracle, metrics=recorded, running=running,
                   record_steps=record)


def _execute(cell: Cell, cls: type, problem, oracle, seeds: list[int]) -> tuple[dict, list[dict]]:
    running = running_metrics(cell)
    recorded = recorded_metrics(cell)
    values: dict[str, list] = {m: [] for m in cell.metrics}
    runs = []
    if cell.anytime:
        T_max = max(cell.horizons)
        result = _one_run(cls, horizon_hyper(cell, problem, T_max), problem, oracle, T_max, seeds,
                          list(cell.horizons), running, recorded)
        for m in cell.metrics:
            trace = result.trace[_TRACE_KEY[m]]
            index = [result.steps.index(T) for T in cell.horizons]
            values[m] = trace[index]
        runs.append({"T": T_max, "mode": result.mode, "wall_time": result.wall_time})
    else:
        for T in cell.horizons:
            result = _one_run(cls, horizon_hyper(cell, problem, T), problem, oracle, T, seeds, [T], running, recorded)
            for m in cell.metrics:
                values[m].append(result.trace[_TRACE_KEY[m]][-1])
            runs.append({"T": T, "mode": result.mode, "wall_time": result.wall_time})
        values = {m: np.stack(v) for m, v in values.items()}
    return values, runs


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run ``cell`` and return its row (values rounded to 9 significant digits; see :mod:`verify.rates.store`)."""
    t_start = time.perf_counter()
    problem = build_problem(*cell.problem)
    noise = build_noise(cell.noise[0], cell.noise[1], problem.shape)
    # a one-term "finite sum" (the ABC problem with N = 1) needs no sampling: its exact gradient is reused
    oracle = Oracle(problem, noise, sample=problem.stochastic and getattr(problem, "n_terms", 2) > 1)
    seeds = cell.seed_ids()
    cls = resolve_algorithm(cell.algorithm)
    if cell.schedule["kind"] in ("mars_theory", "anytime_power"):
        cls = with_lr_schedule(cls, mars_theory_eta(cell.schedule))
    values, runs = _execute(cell, cls, problem, oracle, seeds)
    constants = dict(problem.constants())
    constants["L_sample"] = float(getattr(problem, "L_sample", problem.L))  # per-sample smoothness (B.2)
    constants.update(noise_constants(cell.noise[0], cell.noise[1], problem.shape, cell.l21_subset))
    return {
        "key": cell.key,
        "digest": cell.digest(),
        "spec": cell.spec(),
        "figure": cell.figure,
        "label": cell.label,
        "seeds": seeds,
        "horizons": list(cell.horizons),
        "values": {m: [[float(f"{v:.9g}") for v in row] for row in np.asarray(values[m]).tolist()] for m in cell.metrics},
        "constants": {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                      for k, v in constants.items()},
        "runs": runs,
        "wall_time": time.perf_counter() - t_start,
    }
