"""Full-batch runs on the A − BWC problem through :func:`synthetic.runner.run`, recording every gradient."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch

from synthetic import spectrum as sp
from synthetic.noise import AdditiveNoise
from synthetic.oracle import Oracle
from synthetic.problems import MatrixQuadratic
from synthetic.runner import run as run_synthetic

from .theory import AbcTheory

__all__ = ["GDTrace", "RecordingOracle", "steps_to_floor", "run_gd", "roundoff_tolerance", "agreement", "decimate",
           "series"]

# ----------------------------------------------------------------------------- the run
@dataclass
class GDTrace:
    """Per-step gradients of one run (``[T, m, n]``, row t = the gradient at :math:`W_t`, t = 0 … T−1):
    ``clean`` = :math:`G(W_t)`, ``observed`` = what the optimizer received (clean + noise)."""

    clean: torch.Tensor
    observed: torch.Tensor
    measurable: int  # leading steps before the float floor of the clean gradient
    result: Any = None  # the synthetic.runner RunResult (metrics recorded by the runner)

    @property
    def steps(self) -> torch.Tensor:
        return torch.arange(self.clean.shape[0])


class RecordingOracle(Oracle):
    """The synthetic full-batch oracle (``sample=False``: the exact gradient, plus ``noise``) that also keeps
    what it returned for the first seed. A thin layer over :class:`synthetic.oracle.Oracle`: the runner
    records metrics of the iterate only, and the rank checks need the full gradient matrices."""

    def __init__(self, problem: MatrixQuadratic, noise: AdditiveNoise | None = None) -> None:
        super().__init__(problem, noise, sample=False)
        self.clean: list[torch.Tensor] = []
        self.observed: list[torch.Tensor] = []

    def __call__(self, x, streams, step):
        g, exact = super().__call__(x, streams, step)
        self.clean.append(exact[0].detach().clone())
        self.observed.append(g[0].detach().clone())
        return g, exact


def steps_to_floor(theory: AbcTheory, problem: MatrixQuadratic, margin: int = 20, cap: int = 20000) -> int:
    r"""Steps for the clean gradient to reach the float floor, from the theory alone: late in the run
    :math:`\|G_t\| pprox (1-\eta\lambda_1)^t \|G_\parallel\|`."""
    G0 = problem.grad(problem.x0.unsqueeze(0))[0]
    target = float(sp.float_floor_threshold(float(torch.linalg.matrix_norm(G0)), problem.dtype))
    ratio = target / float(torch.linalg.matrix_norm(theory.g_parallel))
    t = math.log(ratio) / math.log(1 - theory.lr * theory.lambda1)
    return min(cap, max(1, math.ceil(t)) + margin)


@contextlib.contextmanager
def _one_thread():
    """One intra-op thread while a run lasts (restored after): the runs are thousands of tiny matrix
    products, for which a second OpenMP thread only adds synchronisation. Results do not depend on it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_gd(problem: MatrixQuadratic, steps: int, *, hyper: dict[str, Any] | None = None,
           noise: AdditiveNoise | None = None, seed: int = 0, optimizer: str = "sgd",
           metrics: dict[str, Any] | None = None) -> GDTrace:
    """``steps`` steps of the registry optimizer ``optimizer`` (default plain ``sgd`` with η = 1/L: full-batch
    GD) on seed ``seed`` of ``problem`` through :func:`synthetic.runner.run`, recording the gradient matrix
    at every step (:class:`RecordingOracle`); ``metrics`` are recorded by the runner after every step
    (``result.trace[name][k]`` is the value after step k + 1)."""
    hyper = {"lr": 1.0 / problem.L} if hyper is None else hyper
    oracle = RecordingOracle(problem, noise)
    with _one_thread():
        result = run_synthetic(optimizer, hyper, problem, steps=steps, seeds=[seed], oracle=oracle,
                               metrics=metrics or {}, running=(),
                               record_steps=list(range(1, steps + 1)) if metrics else [steps])
    clean = torch.stack(oracle.clean)
    return GDTrace(clean, torch.stack(oracle.observed), int(sp.steps_before_floor(torch.linalg.matrix_norm(clean))),
                   result)


def roundoff_tolerance(norms: torch.Tensor, condition: float) -> torch.Tensor:
    """Relative tolerance on the stable rank at each step (module docstring, "Round-off model")."""
    t = torch.arange(norms.shape[0], dtype=torch.float64)
    eps = torch.finfo(norms.dtype).eps
    return 4 * (2 + condition * torch.log1p(t)) * eps * norms[0] / norms + 1e-13


def agreement(trace: GDTrace, theory: AbcTheory) -> tuple[bool, float, torch.Tensor, torch.Tensor]:
    """Measured stable rank vs the closed form on the measurable steps: (ok, worst ratio to tolerance, sr, sr_cf)."""
    T = trace.measurable
    steps = trace.steps[:T]
    measured = sp.stable_rank(sp.singular_values(trace.clean[:T]))
    predicted = sp.stable_rank(sp.singular_values(theory.closed_form(steps)))
    tol = roundoff_tolerance(torch.linalg.matrix_norm(trace.clean[:T]), theory.condition)
    ratio = ((measured - predicted).abs() / predicted) / tol
    return bool((ratio <= 1).all()), float(ratio.max()), measured, predicted


def decimate(T: int, points: int = 400) -> list[int]:
    """Indices 0..T−1: every step early, log-spaced late (for compact JSON traces)."""
    if T <= points:
        return list(range(T))
    lin = set(range(min(T, points // 2)))
    logs = torch.logspace(math.log10(max(1, points // 2)), math.log10(T - 1), points // 2).round().long().tolist()
    return sorted(lin | {int(i) for i in logs} | {T - 1})


def series(x: torch.Tensor, idx: list[int]) -> list[float]:
    return [float(x[i]) for i in idx]

