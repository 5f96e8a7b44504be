r"""AdaRankGrad's rank diagnostics, read from the optimizer's state (the optimizer itself only records).

AdaRankGrad keeps ``state["refresh_log"]`` (CPU int64 ``[k, 2]``): the ``(step, rank)`` of each refresh
of a projected parameter, so the record survives checkpoints. These functions expand it:

* :func:`refresh_steps` — the 1-based steps at which the subspace was (re)chosen;
* :func:`rank_trace` — :math:`r_t` for every step taken;
* :func:`rank_traces` / :func:`rank_summary` — every projected parameter by name, with the time-average
  and peak rank and the state they imply, :math:`r_t(\min(m,n) + 2\max(m,n))` elements (basis plus the two
  Adam moments of the projected gradient).

They work on any optimizer whose state holds a ``refresh_log`` of that layout.
"""

from __future__ import annotations

from typing import Iterator

import torch

__all__ = ["refresh_steps", "rank_trace", "rank_traces", "rank_summary"]


def refresh_steps(optimizer: torch.optim.Optimizer, p: torch.Tensor) -> list[int]:
    """1-based steps at which ``p``'s subspace was (re)chosen (empty for a dense parameter)."""
    log = optimizer.state[p].get("refresh_log")
    return [] if log is None else [int(s) for s in log[:, 0]]


def rank_trace(optimizer: torch.optim.Optimizer, p: torch.Tensor) -> list[int]:
    """:math:`r_t` for t = 1 … the number of steps ``p`` has taken (empty for a dense parameter)."""
    state = optimizer.state[p]
    log = state.get("refresh_log")
    if log is None or log.shape[0] == 0:
        return []
    bounds = [int(s) for s in log[:, 0]] + [int(state["step"]) + 1]
    trace: list[int] = []
    for i, rank in enumerate(int(r) for r in log[:, 1]):
        trace.extend([rank] * (bounds[i + 1] - bounds[i]))
    return trace


def _named_projected(optimizer: torch.optim.Optimizer) -> Iterator[tuple[str, torch.Tensor]]:
    for gi, group in enumerate(optimizer.param_groups):
        names = group.get("param_names")
        for pi, p in enumerate(group["params"]):
            if "refresh_log" in optimizer.state.get(p, {}):
                name = names[pi] if names is not None and pi < len(names) else f"param_groups[{gi}]['params'][{pi}]"
                yield name, p


def rank_traces(optimizer: torch.optim.Optimizer) -> dict[str, list[int]]:
    """``{parameter name: rank trace}`` for every projected parameter that has taken a step."""
    return {name: rank_trace(optimizer, p) for name, p in _named_projected(optimizer)}


def rank_summary(optimizer: torch.optim.Optimizer) -> dict[str, dict[str, float]]:
    r"""Per projected parameter: time-average, peak and final rank, the number of refreshes, and the
    time-average and peak state elements :math:`r_t(\min(m,n) + 2\max(m,n))`."""
    out = {}
    for name, p in _named_projected(optimizer):
        trace = rank_trace(optimizer, p)
        if not trace:
            continue
        m, n = p.shape
        per_rank = min(m, n) + 2 * max(m, n)
        mean = sum(trace) / len(trace)
        out[name] = {
            "mean_rank": mean,
            "max_rank": max(trace),
            "final_rank": trace[-1],
            "refreshes": len(refresh_steps(optimizer, p)),
            "mean_state_elements": mean * per_rank,
            "peak_state_elements": max(trace) * per_rank,
        }
    return out
