"""The fast path (``fast=True``) equals the reference path (``fast=False``) in float64, parameters and state.

For every registered optimizer (each has a fast path) and every input of its OptimizerInfo
(tests/optim_db: refresh gaps of 2–3 steps, data-chosen ranks, weight decay, randomized
decompositions, every variant), both paths step identical copies of the same parameters on the same
loss (the contract battery's smooth non-convex loss, whose 2-D coupling term gives rank > 1
gradients) for ``STEPS`` steps (several refreshes), on a set of shapes in one parameter group (tall,
wide, square, 1-D, 0-D, zero-size, 3-D; some shapes once, some two or three times, so the projected
methods form stacks of several matrices and stacks of one), and on the same shapes with one leading
independent-problem dimension (``batch_dims=1``) where the class supports it; also with diverging
step counts, two parameter groups, and a checkpoint saved on one path and resumed on the other.
Parameters and every state tensor must agree to ``RTOL`` relative to the largest entry (the
elementwise paths are the same operations in the same order, so on the CPU they agree bit for bit;
the projected methods' batched decompositions and products differ by round-off). One quantity is
round-off itself: the norm of a projection residual at full rank (zero in exact arithmetic); it is
compared relative to the gradient's norm, the scale its round-off comes from (``ROUNDOFF_SCALED``).

Power: each comparison is also run with planted bugs in the fast path and must fail: a hyperparameter
off by 1e-6 relative inside a multi-tensor update; a stack that hands two matrices each other's state;
a stack whose refreshed basis is not written back (a stale basis). A fast run that silently took the
reference path is caught by counting the calls of the fast step, and a projected method that never
formed a stack by counting the stacks.
"""

from __future__ import annotations

import copy
import io
import math
import warnings

import pytest
import torch

import algorithms
import algorithms.mars_shampoo
from algorithms._base import ReferenceOptimizer
from algorithms._stacked import StackedFastPath

from .optim_db import OPTIM_DB

RTOL = 1e-12
STEPS = 10
#: state keys that are round-off at full rank, compared relative to the norm of the parameter's gradient
ROUNDOFF_SCALED = frozenset({"residual_norm"})
#: inputs whose projected matrices never form a stack: every step draws from the matrix's own generator
NEVER_STACKED = {("ldadam", "lowrank_rev")}
# repeated shapes, so that the projected methods' fast path stacks same-shape matrices
SHAPES = [(12, 5), (5, 12), (12, 5), (8, 8), (7,), (8, 8), (), (0, 5), (3, 6, 4), (8, 8), (7,)]
BATCHED_SHAPES = [(3, 12, 5), (3, 5, 12), (3, 12, 5), (3, 7), (3,), (3, 0, 5), (3, 7)]

FAST = sorted(name for name, cls in algorithms.REGISTRY.items() if cls.has_fast_path)
CASES = [(name, inp) for name in FAST for inp in OPTIM_DB[name].inputs]
CASE_IDS = [f"{name}[{inp.desc}]" for name, inp in CASES]


def make_params(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]


def loss_fn(params, targets):
    total = 0.0
    for p, c in zip(params, targets):
        total = total + torch.log1p((p - c) ** 2).sum()
        if p.dim() >= 2 and p.numel():
            m = p.reshape(-1, p.shape[-2], p.shape[-1])
            total = total + 0.1 * (m @ m.transpose(-1, -2)).pow(2).sum() / p.numel()
    return total


def closure_for(opt, params, targets):
    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(params, targets)
        loss.backward()
        return loss

    return closure


def run_both(name, kwargs, shapes, steps=STEPS, drop=None):
    """Step a reference and a fast optimizer on copies of the same parameters; ``drop(t)`` lists the
    parameter indices whose gradient is ``None`` at step ``t`` (so step counts diverge)."""
    return run_both_modes(name, kwargs, shapes, modes=(False, True), steps=steps, drop=drop)


def run_both_modes(name, kwargs, shapes, *, modes, steps=STEPS, drop=None, schedule=None):
    """:func:`run_both` for two values of ``fast=`` (e.g. ``(True, "compile")``); ``schedule(t)`` (optional)
    multiplies every group's initial learning rate before step ``t``."""
    runs = []
    for fast in modes:
        params = make_params(shapes)
        targets = [torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=p.dtype) for p in params]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = algorithms.make(name, params, fast=fast, **kwargs)
            closure = closure_for(opt, params, targets)
            initial = [group["lr"] for group in opt.param_groups]
            for t in range(steps):
                if schedule is not None:
                    for group, lr in zip(opt.param_groups, initial):
                        group["lr"] = lr * schedule(t)
                if drop is None:
                    opt.step(closure)
                    continue
                closure()
                for i in drop(t):
                    params[i].grad = None
                opt.step()
        runs.append((opt, params))
    return runs


def rel_diff(fast: torch.Tensor, ref: torch.Tensor, scale: float = 0.0) -> float:
    """max |fast − ref| / max(max |ref|, scale) (0 for empty tensors; inf when either holds NaN or Inf, so NaN
    never passes)."""
    fast, ref = fast.detach(), ref.detach()
    if not ref.numel():
        return 0.0
    if not (torch.isfinite(fast).all() and torch.isfinite(ref).all()):
        return math.inf
    denominator = ref.abs().max().clamp_min(max(scale, torch.finfo(ref.dtype).tiny))
    return float((fast - ref).abs().max() / denominator)


def worst_difference(runs) -> tuple[float, int]:
    """The largest relative difference over parameters and state tensors, and how many tensors were compared."""
    (ref, ref_params), (fast, fast_params) = runs
    worst, compared = 0.0, 0
    for p, q in zip(ref_params, fast_params):
        assert p.shape == q.shape
        worst = max(worst, rel_diff(q, p))
        compared += 1
        s, r = ref.state[p], fast.state[q]
        assert set(s) == set(r), f"state keys differ: {sorted(s)} vs {sorted(r)}"
        for key in s:
            a, b = s[key], r[key]
            if isinstance(a, torch.Tensor):
                assert a.shape == b.shape and a.dtype == b.dtype and a.device == b.device, key
                if a.is_floating_point():
                    scale = float(p.grad.norm()) if key in ROUNDOFF_SCALED and p.grad is not None else 0.0
                    worst = max(worst, rel_diff(b, a, scale))
                else:
                    assert torch.equal(a, b), key
                compared += 1
            else:
                assert a == b, key
    return worst, compared


def count_fast_steps(monkeypatch, cls) -> list[int]:
    calls = [0]
    original = cls._step_group_fast

    def counting(self, group, *args, **kwargs):
        calls[0] += 1
        return original(self, group, *args, **kwargs)

    monkeypatch.setattr(cls, "_step_group_fast", counting)
    return calls


def record_stacks(monkeypatch) -> list[int]:
    """The sizes of the stacks the projected methods form (StackedFastPath stacks, MARS-Shampoo's batched
    orthogonalisations)."""
    sizes: list[int] = []
    update_stack = StackedFastPath._update_stack

    def recording(self, params, *args, **kwargs):
        sizes.append(len(params))
        return update_stack(self, params, *args, **kwargs)

    monkeypatch.setattr(StackedFastPath, "_update_stack", recording)
    shampoo = algorithms.mars_shampoo.shampoo_step_foreach

    def recording_shampoo(params, *args, **kwargs):
        sizes.append(len(params))
        return shampoo(params, *args, **kwargs)

    monkeypatch.setattr(algorithms.mars_shampoo, "shampoo_step_foreach", recording_shampoo)
    return sizes


def stacks_matrices(name: str) -> bool:
    cls = algorithms.REGISTRY[name]
    return issubclass(cls, StackedFastPath) or name == "mars_shampoo"


@pytest.mark.parametrize("name,inp", CASES, ids=CASE_IDS)
def test_fast_equals_reference(name, inp, monkeypatch):
    calls = count_fast_steps(monkeypatch, algorithms.REGISTRY[name])
    stacks = record_stacks(monkeypatch)
    runs = run_both(name, inp.kwargs, SHAPES)
    worst, compared = worst_difference(runs)
    assert calls[0] >= STEPS, "fast=True must take the fast path"
    assert compared > len(SHAPES) and worst <= RTOL, f"max relative difference {worst:.3e}"
    moved = [not torch.equal(p, q) for p, q in zip(make_params(SHAPES), runs[0][1]) if p.numel()]
    assert all(moved), "every non-empty parameter must move (a comparison of frozen parameters proves nothing)"
    if stacks_matrices(name) and (name, inp.desc) not in NEVER_STACKED:
        assert stacks and max(stacks) >= 2, "the projected matrices of one shape must be stepped as a stack"


@pytest.mark.parametrize("name,inp", [c for c in CASES if algorithms.REGISTRY[c[0]].supports_batch_dims],
                         ids=[i for c, i in zip(CASES, CASE_IDS) if algorithms.REGISTRY[c[0]].supports_batch_dims])
def test_fast_equals_reference_with_batch_dims(name, inp):
    worst, _ = worst_difference(run_both(name, {**inp.kwargs, "batch_dims": 1}, BATCHED_SHAPES))
    assert worst <= RTOL, f"max relative difference {worst:.3e}"


@pytest.mark.parametrize("name", FAST)
def test_fast_equals_reference_when_step_counts_diverge(name):
    """Parameters whose gradient is missing at some steps have other step counts (other buckets)."""
    inp = OPTIM_DB[name].inputs[0]
    if inp.step_requires_closure:
        pytest.skip("a closure-driven estimator cannot drop gradients between its two evaluations")
    worst, _ = worst_difference(run_both(name, inp.kwargs, SHAPES, drop=lambda t: [0, 3] if t % 3 == 1 else [1]))
    assert worst <= RTOL, f"max relative difference {worst:.3e}"


@pytest.mark.parametrize("name", FAST)
def test_fast_equals_reference_with_two_groups(name):
    inp = OPTIM_DB[name].inputs[0]
    kwargs = dict(inp.kwargs)
    lr = kwargs.pop("lr")
    runs = []
    for fast in (False, True):
        params = make_params(SHAPES)
        targets = [torch.zeros_like(p) for p in params]
        opt = algorithms.make(name, [{"params": params[:3]}, {"params": params[3:], "lr": lr / 3, "seed": 5}],
                              lr=lr, fast=fast, **kwargs)
        closure = closure_for(opt, params, targets)
        for _ in range(4):
            opt.step(closure)
        runs.append((opt, params))
    worst, _ = worst_difference(runs)
    assert worst <= RTOL


# ----------------------------------------------------------------------------- power
def _planted_bugs():
    """(optimizer name, module attribute of its fast update, keyword to perturb) — the fast function is wrapped so
    that one hyperparameter is off by 1e-6 relative."""
    return {
        "adam": ("algorithms.adam", "adam_update_foreach", "beta2"),
        "sgd": ("algorithms.sgd", "sgd_update_foreach", "lr"),
        "lion": ("algorithms.lion", "lion_update_foreach", "beta2"),
        "adagrad_coordinate": ("algorithms.adagrad_subset_norm", "adagrad_subset_norm_update_foreach", "lr"),
        "adagrad_subset_norm": ("algorithms.adagrad_subset_norm", "adagrad_subset_norm_update_foreach", "lr"),
        "adagrad_norm": ("algorithms.adagrad_norm", "adagrad_norm_group_update_foreach", "lr"),
        "adam_sn": ("algorithms.adam_sn", "adam_sn_update_foreach", "beta2"),
        "rmsprop_sn": ("algorithms.adam_sn", "adam_sn_update_foreach", "beta2"),
        "mars_adamw": ("algorithms.mars", "mars_step_foreach", "clip_threshold"),
        "mars_lion": ("algorithms.mars_lion", "sign_descent_step_foreach", "lr"),
    }


@pytest.mark.parametrize("name", sorted(_planted_bugs()))
def test_planted_bug_in_the_fast_path_is_caught(name, monkeypatch):
    import importlib

    module_name, attribute, key = _planted_bugs()[name]
    module = importlib.import_module(module_name)
    original = getattr(module, attribute)

    def buggy(*args, **kwargs):
        kwargs[key] = kwargs[key] * (1 + 1e-6)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, attribute, buggy)
    worst, _ = worst_difference(run_both(name, OPTIM_DB[name].inputs[0].kwargs, SHAPES))
    assert worst > 1e3 * RTOL, f"a planted bug went unnoticed (max relative difference {worst:.3e})"


STACKED = sorted(n for n in FAST if stacks_matrices(n))
#: the state key holding each stacked method's basis (MARS-Shampoo keeps none; AdaRankGrad refreshes its basis
#: per matrix, outside the stack, so a stale write-back cannot happen there)
BASIS_KEY = {"galore_adamw": "basis", "fira_adamw": "basis", "ldadam": "basis", "subspace_momentum": "basis",
             "adam_sn_sm": "basis"}


def plant_mixed_states(monkeypatch):
    """A stack that pairs each matrix with its neighbour's state (states rotated by one)."""
    update_stack = StackedFastPath._update_stack

    def mixed(self, params, grads, states, group):
        return update_stack(self, params, grads, states[1:] + states[:1], group)

    monkeypatch.setattr(StackedFastPath, "_update_stack", mixed)
    shampoo = algorithms.mars_shampoo.shampoo_step_foreach

    def mixed_shampoo(params, exp_avgs, *args, **kwargs):
        return shampoo(params, exp_avgs[1:] + exp_avgs[:1], *args, **kwargs)

    monkeypatch.setattr(algorithms.mars_shampoo, "shampoo_step_foreach", mixed_shampoo)


def plant_stale_basis(monkeypatch, key):
    """A stack whose basis is not written back: after every stacked step each matrix has its old basis again."""
    update_stack = StackedFastPath._update_stack

    def stale(self, params, grads, states, group):
        old = [s[key].clone() if key in s else None for s in states]
        update_stack(self, params, grads, states, group)
        for s, basis in zip(states, old):
            if basis is not None and s[key].shape == basis.shape:
                s[key].copy_(basis)

    monkeypatch.setattr(StackedFastPath, "_update_stack", stale)


@pytest.mark.parametrize("bug", ["mixed_states", "stale_basis"])
@pytest.mark.parametrize("name", STACKED)
def test_planted_bug_in_a_stack_is_caught(name, bug, monkeypatch):
    if bug == "stale_basis":
        if name not in BASIS_KEY:
            pytest.skip("no basis goes through a stack's write-back")
        plant_stale_basis(monkeypatch, BASIS_KEY[name])
    else:
        plant_mixed_states(monkeypatch)
    worst, _ = worst_difference(run_both(name, OPTIM_DB[name].inputs[0].kwargs, SHAPES))
    assert worst > 1e3 * RTOL, f"a planted bug went unnoticed (max relative difference {worst:.3e})"


def test_every_fast_path_has_a_planted_bug():
    elementwise = {n for n in FAST if not stacks_matrices(n)}
    assert set(_planted_bugs()) >= elementwise
    assert set(BASIS_KEY) | {"adarankgrad", "mars_shampoo"} == set(STACKED)
    assert set(FAST) == set(algorithms.REGISTRY), "every registered optimizer has a fast path"


# ----------------------------------------------------------------------------- the switch
def test_fast_default_is_the_reference_path():
    for name, cls in algorithms.REGISTRY.items():
        opt = cls([torch.zeros(3, requires_grad=True)])
        assert opt.fast is False, name


@pytest.mark.parametrize("bad,error", [(1, TypeError), (None, TypeError), (2.0, TypeError), ("yes", ValueError),
                                       ("AUTO", ValueError), ("Compile", ValueError)])
def test_fast_rejects_other_values(bad, error):
    with pytest.raises(error, match="fast must be"):
        algorithms.make("adam", [torch.zeros(3, requires_grad=True)], fast=bad)


class _ReferenceOnly(ReferenceOptimizer):
    """A class without a fast path (every registered optimizer has one; a third-party subclass may not)."""

    def __init__(self, params, lr=0.1, **kwargs):
        super().__init__(params, {"lr": lr}, **kwargs)

    def _init_state(self, p, group, state):
        pass

    def _update_param(self, p, grad, state, group):
        state["step"] += 1
        p.sub_(grad, alpha=group["lr"])


def test_fast_true_without_a_fast_path_is_an_error_and_auto_is_the_reference():
    p = torch.zeros(4, 3, requires_grad=True)
    with pytest.raises(ValueError, match="fast=True.*no fast path"):
        _ReferenceOnly([p], fast=True)
    opt = _ReferenceOnly([p], fast="auto")
    p.grad = torch.ones_like(p)
    opt.step()
    assert opt.fast == "auto" and torch.equal(p, torch.full_like(p, -0.1))


@pytest.mark.parametrize("name", FAST)
def test_auto_takes_the_reference_path_on_the_cpu(name, monkeypatch):
    calls = count_fast_steps(monkeypatch, algorithms.REGISTRY[name])
    params = make_params([(6, 4), (4,)])
    opt = algorithms.make(name, params, fast="auto", **OPTIM_DB[name].inputs[0].kwargs)
    opt.step(closure_for(opt, params, [torch.zeros_like(p) for p in params]))
    assert calls[0] == 0


def resumed_run(name, kwargs, first_fast, then_fast, steps=STEPS, resume_at=STEPS // 2):
    """``resume_at`` steps on one path, a ``torch.save`` / ``torch.load(weights_only=True)`` round trip into a new
    optimizer (and new parameter tensors) on the other path, then the remaining steps."""
    params = make_params(SHAPES)
    targets = [torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=p.dtype) for p in params]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = algorithms.make(name, params, fast=first_fast, **kwargs)
        for _ in range(resume_at):
            opt.step(closure_for(opt, params, targets))
        buf = io.BytesIO()
        torch.save(opt.state_dict(), buf)
        buf.seek(0)
        params = [p.detach().clone().requires_grad_() for p in params]
        opt = algorithms.make(name, params, fast=then_fast, **kwargs)
        opt.load_state_dict(torch.load(buf, weights_only=True))
        for _ in range(steps - resume_at):
            opt.step(closure_for(opt, params, targets))
    return opt, params


@pytest.mark.parametrize("direction", ["fast_to_reference", "reference_to_fast"])
@pytest.mark.parametrize("name", FAST)
def test_checkpoints_resume_across_paths(name, direction):
    """A state dict saved on one path resumes on the other and continues as an uninterrupted reference run
    (the save falls between refreshes, so both sides of a refresh are crossed after the load)."""
    inp = OPTIM_DB[name].inputs[0]
    first_fast = direction == "fast_to_reference"
    uninterrupted = run_both(name, inp.kwargs, SHAPES)[0]
    resumed = resumed_run(name, inp.kwargs, first_fast, not first_fast)
    worst, _ = worst_difference([uninterrupted, resumed])
    assert worst <= RTOL, f"max relative difference {worst:.3e}"


@pytest.mark.parametrize("name", FAST)
def test_fast_survives_deepcopy(name):
    params = make_params([(6, 4), (4,)])
    opt = algorithms.make(name, params, fast=True, **OPTIM_DB[name].inputs[0].kwargs)
    opt.step(closure_for(opt, params, [torch.zeros_like(p) for p in params]))
    assert copy.deepcopy(opt).fast is True


@pytest.mark.parametrize("policy", ["raise", "skip"])
@pytest.mark.parametrize("name", FAST)
def test_nonfinite_policies_on_the_fast_path(name, policy):
    inp = OPTIM_DB[name].inputs[0]
    if inp.step_requires_closure:
        pytest.skip("covered by the reference battery")
    runs = []
    for fast in (False, True):
        params = make_params([(6, 4), (4,)])
        opt = algorithms.make(name, params, fast=fast, **{**inp.kwargs, "nonfinite": policy})
        closure = closure_for(opt, params, [torch.zeros_like(p) for p in params])
        opt.step(closure)
        closure()
        params[1].grad[2] = math.nan
        if policy == "raise":
            before = [p.detach().clone() for p in params]
            with pytest.raises(algorithms.NonFiniteGradientError, match=r"\['params'\]\[1\]"):
                opt.step()
            assert all(torch.equal(a, b) for a, b in zip(params, before))
        else:
            with pytest.warns(RuntimeWarning, match="skipped"):
                opt.step()
        opt.step(closure)
        runs.append((opt, params))
    worst, _ = worst_difference(runs)
    assert worst <= RTOL


def test_screening_is_exact_for_overflowing_finite_gradients():
    """The screening's L1 sum overflows for huge finite entries; those tensors are confirmed entry by entry."""
    from algorithms._base import all_finite

    huge = torch.full((4,), 3e38, dtype=torch.float32)  # finite, but the sum is inf in float32
    nan = torch.tensor([1.0, math.nan])
    inf = torch.tensor([-math.inf], dtype=torch.float64)
    empty = torch.empty(0, 3)
    meta = torch.empty(5, device="meta")
    assert all_finite([huge, nan, inf, empty, meta, torch.ones(2, 2)]) == [True, False, False, True, True, True]


def test_base_class_documents_the_switch():
    doc = ReferenceOptimizer.__module__
    import importlib

    text = importlib.import_module(doc).__doc__
    assert "Fast path" in text and "``False`` (default)" in text and '``"auto"``' in text
