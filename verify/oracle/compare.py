"""``compare``: a candidate against the float64 reference, live, step by step."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

import algorithms

from .candidates import build_candidate, candidate_label, load_candidate
from .engine import ReferenceSide, run_comparison
from .errors import OracleInputError
from .gradients import GRADIENT_KINDS, GradientStream
from .groups import build_groups, parse_groups
from .hyperparams import diff_hyperparameters, effective_hyperparameters
from .problem import DEFAULT_SHAPES, check_shapes, initial_values, param_names
from .report import OracleReport
from .settings import auto_steps, resolve_dtype_rtol, resolve_kwargs

__all__ = ["compare", "check_reference_name", "build_reference", "hints_for"]


def check_reference_name(reference: str) -> type:
    if reference not in algorithms.REGISTRY:
        raise OracleInputError(f"reference: unknown optimizer {reference!r}; registered: {', '.join(sorted(algorithms.REGISTRY))}")
    return algorithms.REGISTRY[reference]


def _check_steps(steps: int | None) -> int | None:
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise OracleInputError(f"steps must be an int >= 1, got {steps!r}")
    return steps


def _check_state_map(state_map: dict[str, str] | None) -> dict[str, str]:
    state_map = dict(state_map or {})
    for k, v in state_map.items():
        if not (isinstance(k, str) and isinstance(v, str) and k and v):
            raise OracleInputError(f"state map: expected reference_key=candidate_key strings, got {k!r}={v!r}")
    return state_map


def _check_kwargs(value: dict[str, Any] | None, option: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OracleInputError(f"{option}: expected a JSON object of keyword arguments, got {type(value).__name__}")
    return dict(value)


def build_reference(reference: str, params: Any, kwargs: dict[str, Any]) -> torch.optim.Optimizer:
    try:
        return algorithms.make(reference, params, **kwargs)
    except Exception as exc:  # a reference that cannot run these settings: an input problem
        raise OracleInputError(f"reference: {reference}(params, **{kwargs!r}) raised {type(exc).__name__}: {exc}") from exc


def hints_for(reference_cls: type, reference_hparams: dict[str, Any], user_reference_keys: set[str],
              filled: dict[str, tuple[Any, str]]) -> list[str]:
    hints = []
    variants = getattr(reference_cls, "variants", ())
    if "official" in variants and reference_hparams.get("variant") == "paper" and "variant" not in user_reference_keys:
        hints.append(f"the reference runs variant='paper' (the paper's conventions); variant='official' reproduces the "
                     f"authors' code (e.g. --reference-kwargs '{{\"variant\": \"official\"}}'; differences: "
                     f"{reference_cls.__module__}.{reference_cls.__name__} docstring, 'Variants')")
    if "weight_decay" in filled:
        hints.append("the oracle set weight_decay on both sides; if the candidate decays differently on purpose "
                     "(coupled L2, after the update, not scaled by lr), pass weight_decay=0 to check everything else")
    return hints


class LiveReference(ReferenceSide):
    def __init__(self, opt: torch.optim.Optimizer, params: Sequence[torch.Tensor], label: str) -> None:
        self.opt, self.params, self.label = opt, list(params), label

    def step(self, step: int, grads: Sequence[torch.Tensor]) -> None:
        for p, g in zip(self.params, grads):
            p.grad = g.detach().clone()
        self.opt.step()
        for p in self.params:
            if not bool(torch.isfinite(p).all()):
                raise OracleInputError(f"reference: {self.label} produced non-finite parameters at step {step}; "
                                       "these settings are outside its stable range")

    def values(self, step: int) -> list[torch.Tensor]:
        return self.params

    def state(self, step: int, index: int) -> dict[str, Any]:
        return self.opt.state.get(self.params[index], {})


def compare(
    reference: str,
    candidate: Callable[..., torch.optim.Optimizer] | str,
    *,
    kwargs: dict[str, Any] | None = None,
    reference_kwargs: dict[str, Any] | None = None,
    candidate_kwargs: dict[str, Any] | None = None,
    reference_groups: str | Sequence[dict[str, Any]] | None = None,
    candidate_groups: str | Sequence[dict[str, Any]] | None = None,
    shapes: Sequence[Sequence[int]] | None = None,
    steps: int | None = None,
    dtype: torch.dtype | None = None,
    gradients: str = "lowrank",
    state_map: dict[str, str] | None = None,
    rtol: float | None = None,
    strict: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    candidate_name: str | None = None,
    stub_missing: Sequence[str] = (),
    _layout: Any = None,
) -> OracleReport:
    """Step ``candidate`` and the float64 reference ``reference`` on identical gradients.

    ``kwargs`` go to both constructors, ``reference_kwargs`` / ``candidate_kwargs`` to one side
    (they win over ``kwargs``); ``*_groups`` are parameter-group specs (:mod:`verify.oracle.groups`).
    ``candidate`` is a class or a factory ``(params, **kwargs) -> Optimizer``, or its import path
    ``"module:attr"``. ``state_map`` maps reference state keys to candidate state keys. Defaults
    (shapes, steps, gradients, the filled-in weight decay and ranks) are documented in
    :mod:`verify.oracle.settings`; everything filled in is listed in the report's ``settings``.
    Raises :class:`OracleInputError` (a ``ValueError``) for settings that cannot run.
    (``_layout``: :class:`verify.oracle.distributed.DistributedLayout`, set by
    :func:`verify.oracle.distributed.compare_distributed` on every rank.)
    """
    reference_cls = check_reference_name(reference)
    if isinstance(candidate, str):
        candidate_name = candidate_name or candidate
        candidate = load_candidate(candidate, stub_missing=stub_missing)
    if not callable(candidate):
        raise OracleInputError(f"candidate must be a class or factory, got {type(candidate).__name__}")
    label = candidate_name or candidate_label(candidate)
    shapes = check_shapes(DEFAULT_SHAPES if shapes is None else shapes)
    names = param_names(shapes)
    dtype, rtol = resolve_dtype_rtol(dtype, rtol, strict)
    steps = _check_steps(steps)
    if gradients not in GRADIENT_KINDS:
        raise OracleInputError(f"gradients: unknown stream {gradients!r}; valid: {', '.join(GRADIENT_KINDS)}")
    state_map = _check_state_map(state_map)
    ref_spec = parse_groups(reference_groups, "reference groups")
    cand_spec = parse_groups(candidate_groups, "candidate groups")
    user_kwargs = _check_kwargs(kwargs, "kwargs")
    user_ref = _check_kwargs(reference_kwargs, "reference kwargs")
    user_cand = _check_kwargs(candidate_kwargs, "candidate kwargs")
    resolved = resolve_kwargs(reference_cls, candidate, shapes, kwargs=user_kwargs, reference_kwargs=user_ref,
                              candidate_kwargs=user_cand, reference_groups=ref_spec, candidate_groups=cand_spec)

    init = initial_values(shapes, seed, dtype)
    ref_params = [x.clone().to(device).requires_grad_() for x in init]
    cand_params = [x.clone().to(device=device, dtype=dtype).requires_grad_() for x in init]
    if _layout is not None:
        cand_params = _layout.place_params(cand_params)
    ref_arg, ref_notes = build_groups(ref_spec, ref_params, shapes, names, "reference groups")
    cand_arg, cand_notes = build_groups(cand_spec, cand_params, shapes, names, "candidate groups")
    ref_opt = build_reference(reference, ref_arg, resolved.reference_kwargs)
    cand_opt = build_candidate(candidate, cand_arg, resolved.candidate_kwargs, label)

    settings = [] if shapes == DEFAULT_SHAPES else [f"shapes {', '.join('x'.join(map(str, s)) or '0-D' for s in shapes)}"]
    if strict:
        settings.append("strict: float64, rtol 1e-10")
    if steps is None:
        steps, why = auto_steps(ref_opt.param_groups)
        settings.append(why)
    settings.extend(resolved.notes + ref_notes + cand_notes)
    if _layout is not None:
        settings.append(_layout.describe())

    ref_h = [effective_hyperparameters(ref_opt, p, reference_cls, resolved.reference_kwargs) for p in ref_params]
    cand_h = [effective_hyperparameters(cand_opt, p, candidate, resolved.candidate_kwargs) for p in cand_params]
    user_ref_keys = set(user_kwargs) | set(user_ref) | {k for g in ref_spec or () for k in g}
    report = OracleReport(
        reference=reference, candidate=label, dtype=str(dtype).replace("torch.", ""), steps=steps,
        gradients=gradients, rtol=rtol, seed=seed, shapes=list(shapes), param_names=names, settings=settings,
        state_map=state_map, hyperparameters=diff_hyperparameters(ref_h, cand_h, names),
        hints=hints_for(reference_cls, ref_h[0], user_ref_keys, resolved.filled),
    )

    stream = GradientStream(gradients, shapes, seed)
    if _layout is not None:  # the loop sees the gathered parameters and states; step() steps every rank
        cand_opt, cand_params = _layout.view(cand_opt, cand_params, list(state_map.values()))

    def next_gradients(step: int):
        if stream.closed_loop:
            data = stream.loss_data(step)
            return (stream.loss_gradients(data, ref_params, torch.float64),
                    stream.loss_gradients(data, cand_params, dtype))
        cand = [g.to(device=device, dtype=dtype) for g in stream.gradients(step)]
        return [g.to(torch.float64) for g in cand], cand

    return run_comparison(report, ref=LiveReference(ref_opt, ref_params, reference), cand_opt=cand_opt,
                          cand_params=cand_params, next_gradients=next_gradients, steps=steps, state_map=state_map)
