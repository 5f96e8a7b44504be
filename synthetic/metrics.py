r"""Metrics recorded by the batched runner: ``name -> fn(problem, x, optimizer)``.

A metric is any callable ``fn(problem, x, view)`` where ``x`` is the ``[S, *shape]`` iterate and ``view`` an
:class:`OptimizerView`; it returns a tensor with a leading seed dimension (``[S]`` or ``[S, k]``) or a
dict of such tensors (recorded as ``"name.key"``). Metrics run at the recording steps only, after the
optimizer step, so they never change a trajectory.

Running statistics over **every** step are *running metrics*: ``fn(problem, x, grad) -> [S]``, evaluated
at each query point :math:`x_{t-1}` on the exact gradient the oracle computed there, and recorded as
``"<name>.mean"`` (:math:`\frac1t\sum_{k<t} m(x_k)`) and ``"<name>.min"``. With ``grad_norm_sq`` this is
:math:`R_T = \frac1T\sum_{t \le T}\|\nabla f(x_t)\|^2` of docs/problems.md §1 (iterates counted from the start).

Built-in metrics (:data:`METRICS`):

=====================  ==================================================================
``f``                  :math:`f(x)`
``subopt``             :math:`f(x) - f_{\inf}`
``grad_norm_sq``       :math:`\|\nabla f(x)\|_2^2` (exact gradient)
``grad_l1_sq``         :math:`\|\nabla f(x)\|_1^2`
``dist_to_opt``        :math:`\|x - x^\star\|_2` (problems with a known minimiser)
``in_domain``          1 where ``x`` lies in the set on which ``L`` holds
``state_norms``        :math:`\|\cdot\|_2` of every floating-point per-seed state tensor
``clip_count``         the optimizer's ``state["clip_count"]`` (clipping optimizers)
``basis_rank``         ``state["basis"].shape[-1]`` (projection optimizers)
``grad_stable_rank``   :math:`\|G\|_F^2/\|G\|_2^2` of the exact gradient (matrix problems)
``grad_energy_rank``   :math:`r(0.01)` of the exact gradient (matrix problems)
=====================  ==================================================================

Factories: :func:`distance_to`, :func:`state_value`, :func:`energy_rank`. State metrics are NaN before the
first step (no state yet); a key that is still missing afterwards is an error naming the keys present.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ._invariant import rowsum

__all__ = [
    "METRICS",
    "RUNNING_METRICS",
    "OptimizerView",
    "distance_to",
    "state_value",
    "energy_rank",
    "resolve_metrics",
    "resolve_running",
]

Metric = Callable[[Any, torch.Tensor, "OptimizerView"], Any]


class OptimizerView:
    """Per-seed access to optimizer state, the same in batched and in loop mode.

    ``state(key)`` returns a tensor ``[S, ...]``: in batched mode the single parameter's state (shared
    0-D entries such as ``step`` are broadcast to ``[S]``); in loop mode the seeds' entries stacked.
    """

    def __init__(self, optimizers: list, params: list[torch.Tensor], n_seeds: int, batched: bool) -> None:
        self.optimizers = optimizers
        self.params = params
        self.n_seeds = n_seeds
        self.batched = batched

    def _states(self) -> list[dict]:
        return [opt.state[p] for opt, p in zip(self.optimizers, self.params)]

    @property
    def initialized(self) -> bool:
        """False before the first step (the optimizer has no state yet)."""
        states = self._states()
        return bool(states) and len(states[0]) > 0

    def keys(self) -> list[str]:
        return sorted(self._states()[0].keys()) if self.optimizers else []

    def _per_seed(self, key: str, value) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value)
        if self.batched:
            if value.dim() >= 1 and value.shape[0] >= self.n_seeds:
                return value[: self.n_seeds]
            if value.dim() == 0:
                return value.expand(self.n_seeds)
            raise ValueError(f"state[{key!r}] of shape {tuple(value.shape)} has no leading seed dimension")
        return value

    def state(self, key: str) -> torch.Tensor:
        states = self._states()
        if not states or key not in states[0]:
            raise KeyError(f"optimizer state has no {key!r}; it has {self.keys()}")
        if self.batched:
            return self._per_seed(key, states[0][key])
        values = [torch.as_tensor(st[key]) for st in states]
        if len({tuple(v.shape) for v in values}) != 1:
            raise ValueError(f"state[{key!r}] has different shapes across seeds; use a metric that reduces it per seed")
        return torch.stack(values)

    def per_seed_states(self, key: str) -> list[torch.Tensor]:
        """The entry of every seed separately (shapes may differ across seeds in loop mode)."""
        if self.batched:
            value = self.state(key)
            return [value[s] for s in range(self.n_seeds)]
        return [torch.as_tensor(st[key]) for st in self._states()]


# ----------------------------------------------------------------------------- built-in metrics
def _trailing(x: torch.Tensor) -> int:
    return x.dim() - 1


def metric_f(problem, x, view) -> torch.Tensor:
    return problem.value(x)


def metric_subopt(problem, x, view) -> torch.Tensor:
    return problem.value(x) - problem.f_inf


def grad_norm_sq(problem, x, grad) -> torch.Tensor:
    return rowsum(grad * grad, _trailing(grad))


def grad_l1_sq(problem, x, grad) -> torch.Tensor:
    return rowsum(grad.abs(), _trailing(grad)) ** 2


def metric_grad_norm_sq(problem, x, view) -> torch.Tensor:
    return grad_norm_sq(problem, x, problem.grad(x))


def metric_grad_l1_sq(problem, x, view) -> torch.Tensor:
    return grad_l1_sq(problem, x, problem.grad(x))


def distance_to(point: torch.Tensor) -> Metric:
    """A metric :math:`\\|x - p\\|_2` to a fixed point ``p`` (shape ``problem.shape`` or ``[S, *shape]``)."""

    def metric(problem, x, view) -> torch.Tensor:
        diff = x - point.to(x.dtype)
        return rowsum(diff * diff, _trailing(diff)).sqrt()

    return metric


def metric_dist_to_opt(problem, x, view) -> torch.Tensor:
    if problem.x_star is None:
        raise ValueError(f"{type(problem).__name__} has no known minimiser (x_star); use distance_to(point)")
    return distance_to(problem.x_star)(problem, x, view)


def metric_in_domain(problem, x, view) -> torch.Tensor:
    return problem.in_domain(x).to(torch.float64)


def metric_state_norms(problem, x, view) -> dict[str, torch.Tensor]:
    out = {}
    for key in view.keys():
        try:
            values = view.per_seed_states(key)
        except ValueError:
            continue
        if not all(v.is_floating_point() and v.dim() >= 1 for v in values) or key == "rng_state":
            continue
        out[key] = torch.stack([torch.linalg.vector_norm(v.to(torch.float64)) for v in values])
    return out


def state_value(key: str) -> Metric:
    """A metric reading ``state[key]`` per seed (a scalar or a vector per seed)."""

    def metric(problem, x, view) -> torch.Tensor:
        if not view.initialized:  # before the first step: not available (recorded as NaN)
            return torch.full((x.shape[0],), float("nan"), dtype=torch.float64)
        return view.state(key).to(torch.float64)

    return metric


def metric_basis_rank(problem, x, view) -> torch.Tensor:
    if not view.initialized:
        return torch.full((x.shape[0],), float("nan"), dtype=torch.float64)
    return torch.tensor([float(b.shape[-1]) for b in view.per_seed_states("basis")], dtype=torch.float64)


def _matrix_grad(problem, x) -> torch.Tensor:
    if problem.ndim < 2:
        raise ValueError(f"rank metrics need a matrix problem; {type(problem).__name__} has shape {problem.shape}")
    g = problem.grad(x)
    return g.reshape(g.shape[0], -1, g.shape[-1]) if g.dim() > 3 else g


def metric_grad_stable_rank(problem, x, view) -> torch.Tensor:
    from synthetic.spectrum import singular_values, stable_rank

    return stable_rank(singular_values(_matrix_grad(problem, x)))


def energy_rank(eps: float = 0.01) -> Metric:
    """A metric :math:`r(\\varepsilon)` of the exact gradient (docs/rank.md §1)."""

    def metric(problem, x, view) -> torch.Tensor:
        from synthetic.spectrum import energy_rank as _energy_rank
        from synthetic.spectrum import singular_values

        return _energy_rank(singular_values(_matrix_grad(problem, x)), eps).to(torch.float64)

    return metric


METRICS: dict[str, Metric] = {
    "f": metric_f,
    "subopt": metric_subopt,
    "grad_norm_sq": metric_grad_norm_sq,
    "grad_l1_sq": metric_grad_l1_sq,
    "dist_to_opt": metric_dist_to_opt,
    "in_domain": metric_in_domain,
    "state_norms": metric_state_norms,
    "clip_count": state_value("clip_count"),
    "basis_rank": metric_basis_rank,
    "grad_stable_rank": metric_grad_stable_rank,
    "grad_energy_rank": energy_rank(0.01),
}

RUNNING_METRICS: dict[str, Callable] = {"grad_norm_sq": grad_norm_sq, "grad_l1_sq": grad_l1_sq}


def _resolve(items, table: Mapping[str, Callable], what: str) -> dict[str, Callable]:
    if items is None:
        return {}
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            if isinstance(item, str):
                pairs.append((item, item))
            else:
                raise TypeError(f"{what} entries must be names (str) or a mapping name -> function, got {type(item).__name__}")
    out = {}
    for name, fn in pairs:
        if isinstance(fn, str):
            if fn not in table:
                raise ValueError(f"unknown {what} {fn!r}; built-in: {sorted(table)}")
            fn = table[fn]
        if not callable(fn):
            raise TypeError(f"{what} {name!r} must be callable")
        out[name] = fn
    return out


def resolve_metrics(metrics) -> dict[str, Metric]:
    """Names (from :data:`METRICS`) or a mapping ``name -> fn(problem, x, view)``."""
    return _resolve(metrics, METRICS, "metric")


def resolve_running(running) -> dict[str, Callable]:
    """Names (from :data:`RUNNING_METRICS`) or a mapping ``name -> fn(problem, x, grad)``."""
    return _resolve(running, RUNNING_METRICS, "running metric")
