"""The oracle: step a candidate optimizer and a reference optimizer on identical gradients.

This is how a user checks their own fused, low-precision or distributed implementation against
ours (the approach of bitsandbytes' tests against torch.optim and lion-pytorch):

* the **reference** (a registry name) always runs in float64: it is the ground truth;
* the **candidate** runs in its own dtype on parameters that start equal (rounded);
* both receive, at every step, the same gradient: drawn in float64 and rounded to the candidate's
  dtype, so rounding of the *input* is not counted against the candidate;
* after every step the parameters (and, with ``state_map``, named state tensors) are compared by
  the relative error ``max|a−b| / max|b|``, against a tolerance that depends on the candidate's dtype.

Two gradient sources: ``"random"`` (i.i.d. Gaussian, open loop; errors cannot compound through the
loss) and ``"loss"`` (the gradient of a smooth non-convex loss at each optimizer's *own* iterate,
closed loop, as in training).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch

import algorithms

__all__ = ["OracleReport", "compare", "load_candidate", "relative_error", "DEFAULT_RTOL", "DEFAULT_SHAPES"]

#: per candidate dtype: bitsandbytes uses 1e-5 (fp32), 1e-3 (fp16), 1e-2 (bf16) for 20 steps
DEFAULT_RTOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}
DEFAULT_SHAPES: tuple[tuple[int, ...], ...] = ((64, 32), (32, 64), (48, 48), (17,))


@dataclass
class OracleReport:
    reference: str
    candidate: str
    dtype: str
    steps: int
    gradients: str
    rtol: float
    param_err: list[float] = field(default_factory=list)  # per step, max over parameters
    state_err: dict[str, list[float]] = field(default_factory=dict)  # per mapped key, per step
    first_failure: int | None = None  # 1-based step of the first tolerance violation

    @property
    def passed(self) -> bool:
        return self.first_failure is None

    def summary(self) -> str:
        verdict = "PASS" if self.passed else f"FAIL (first at step {self.first_failure})"
        lines = [
            f"oracle: {self.candidate} vs reference {self.reference} ({self.dtype}, {self.steps} steps, "
            f"{self.gradients} gradients, rtol {self.rtol:g}): {verdict}",
            f"  params: max rel err {max(self.param_err, default=0.0):.3e}",
        ]
        for k, errs in self.state_err.items():
            lines.append(f"  state[{k}]: max rel err {max(errs, default=0.0):.3e}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "passed": self.passed}, indent=2)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a − b| / max|b|`` in float64 (0 for empty tensors; the scale floored at 1e-300)."""
    if a.numel() == 0:
        return 0.0
    a = a.detach().to(torch.float64)
    b = b.detach().to(torch.float64)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _loss(params: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
    total = 0.0
    for p, c in zip(params, targets):
        total = total + torch.log1p((p - c) ** 2).sum()
    return total


def load_candidate(spec: str) -> Callable[..., torch.optim.Optimizer]:
    """``"package.module:Class"`` -> the class (or any factory taking ``(params, **kwargs)``)."""
    if ":" not in spec:
        raise ValueError(f"candidate must look like 'package.module:Class', got {spec!r}")
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def compare(
    reference: str,
    candidate: Callable[..., torch.optim.Optimizer],
    *,
    reference_kwargs: dict[str, Any] | None = None,
    candidate_kwargs: dict[str, Any] | None = None,
    shapes: Sequence[Sequence[int]] = DEFAULT_SHAPES,
    steps: int = 50,
    dtype: torch.dtype = torch.float32,
    gradients: str = "random",
    state_map: dict[str, str] | None = None,
    rtol: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    candidate_name: str | None = None,
) -> OracleReport:
    """Run both optimizers for ``steps`` steps and report per-step relative errors.

    ``state_map`` maps reference state keys to candidate state keys (e.g. ``{"exp_avg": "exp_avg"}``).
    """
    if reference not in algorithms.REGISTRY:
        raise ValueError(f"reference: unknown optimizer {reference!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if gradients not in ("random", "loss"):
        raise ValueError(f"gradients must be 'random' or 'loss', got {gradients!r}")
    if rtol is None:
        if dtype not in DEFAULT_RTOL:
            raise ValueError(f"no default rtol for dtype {dtype}; pass rtol")
        rtol = DEFAULT_RTOL[dtype]
    gen = torch.Generator().manual_seed(seed)
    init = [torch.randn(tuple(s), generator=gen, dtype=torch.float64) for s in shapes]
    init = [x.to(dtype).to(torch.float64) for x in init]  # start from representable values
    targets = [torch.randn(tuple(s), generator=gen, dtype=torch.float64) for s in shapes]
    ref_params = [x.clone().to(device).requires_grad_() for x in init]
    cand_params = [x.clone().to(device=device, dtype=dtype).requires_grad_() for x in init]
    ref_opt = algorithms.make(reference, ref_params, **(reference_kwargs or {}))
    cand_opt = candidate(cand_params, **(candidate_kwargs or {}))
    report = OracleReport(
        reference=reference,
        candidate=candidate_name or getattr(candidate, "__qualname__", str(candidate)),
        dtype=str(dtype).replace("torch.", ""),
        steps=steps,
        gradients=gradients,
        rtol=rtol,
        state_err={k: [] for k in (state_map or {})},
    )
    targets = [t.to(device) for t in targets]
    for step in range(1, steps + 1):
        if gradients == "random":
            grads = [torch.randn(tuple(s), generator=gen, dtype=torch.float64).to(device) for s in shapes]
            cand_grads = [g.to(dtype) for g in grads]
            ref_grads = [g.to(torch.float64) for g in cand_grads]
        else:
            with torch.enable_grad():
                ref_grads = list(torch.autograd.grad(_loss(ref_params, targets), ref_params))
                cand_grads = list(torch.autograd.grad(_loss(cand_params, [t.to(dtype) for t in targets]), cand_params))
        for p, g in zip(ref_params, ref_grads):
            p.grad = g.detach().clone()
        for p, g in zip(cand_params, cand_grads):
            p.grad = g.detach().clone()
        ref_opt.step()
        cand_opt.step()
        worst = max(relative_error(c, r) for c, r in zip(cand_params, ref_params))
        report.param_err.append(worst)
        failed = worst > rtol
        for rkey, ckey in (state_map or {}).items():
            errs = [
                relative_error(cand_opt.state[c][ckey], ref_opt.state[r][rkey])
                for c, r in zip(cand_params, ref_params)
                if rkey in ref_opt.state[r] and ckey in cand_opt.state[c]
            ]
            e = max(errs, default=0.0)
            report.state_err[rkey].append(e)
            failed = failed or e > rtol
        if failed and report.first_failure is None:
            report.first_failure = step
    return report
