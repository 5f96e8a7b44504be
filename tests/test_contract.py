"""The shared contract battery: every registered optimizer, every input of its OptimizerInfo.

Checks (issue #2): right direction; param groups = separate optimizers; LR schedulers take
effect; None grads skipped; state dict = tensors + plain numbers, weights_only round trip, bit-exact
resume (float32 and float64); same seed = same trajectory; float64 end to end; shapes 0-D … 4-D
and zero-size; bad hyperparameters, sparse, complex and non-finite gradients.

Every test that builds an optimizer of one OptimizerInfo runs twice: on the reference path and, for
the classes that have one, on the fast path (``fast=True``; ids ``-ref`` / ``-fast``), so the fast
path keeps the whole contract too (its equality with the reference: tests/test_fast_path.py).
"""

from __future__ import annotations

import copy
import inspect
import io
import math
import numbers
import warnings

import pytest
import torch

import algorithms
from algorithms import NonFiniteGradientError

from .optim_db import OPTIM_DB, all_inputs, input_ids

@pytest.fixture(autouse=True, params=[False, True], ids=["ref", "fast"])
def path(request, monkeypatch):
    """Run the test on the reference path, then on the fast path of the optimizer it is about (skipped for
    tests about no single optimizer and for classes without a fast path)."""
    if not request.param:
        return False
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    info = params.get("info")
    if info is None or not algorithms.REGISTRY[info.name].has_fast_path:
        pytest.skip("no fast path to run")
    make = algorithms.make
    monkeypatch.setattr(algorithms, "make", lambda name, params, **kw: make(name, params, **{"fast": True, **kw}))
    return True


ALL = all_inputs()
IDS = input_ids()
INFOS = list(OPTIM_DB.values())
INFO_IDS = [i.name for i in INFOS]

SHAPES = {
    "0d": (),
    "1d": (7,),
    "tall": (12, 5),
    "wide": (5, 12),
    "square": (8, 8),
    "3d": (3, 6, 4),
    "4d": (4, 3, 3, 2),
    "zero": (0, 5),
}


# ----------------------------------------------------------------------------- problem helpers
def make_params(shapes, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]


def make_targets(params, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]


def loss_fn(params, targets):
    """Smooth non-convex separable loss Σ log(1 + (x - c)²) plus a coupling term (rank > 1 gradients)."""
    total = 0.0
    for p, c in zip(params, targets):
        total = total + torch.log1p((p - c) ** 2).sum()
        if p.dim() == 2 and p.numel():
            total = total + 0.1 * (p @ p.transpose(0, 1)).pow(2).sum() / p.numel()
    return total


def make_closure(opt, params, targets):
    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(params, targets)
        loss.backward()
        return loss

    return closure


def run(name, kwargs, params, targets, steps):
    opt = algorithms.make(name, params, **kwargs)
    closure = make_closure(opt, params, targets)
    for _ in range(steps):
        opt.step(closure)
    return opt


def walk_state(obj):
    """Yield every leaf of a state dict."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from walk_state(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from walk_state(v)
    else:
        yield obj


MATRIX_SHAPES = [(10, 6), (6,)]


# ----------------------------------------------------------------------------- registry
def test_every_registered_optimizer_joins_the_battery():
    assert set(algorithms.REGISTRY) == set(OPTIM_DB), (
        "every registered optimizer needs an OptimizerInfo in tests/optim_db/ and vice versa"
    )


@pytest.mark.parametrize("name", sorted(algorithms.REGISTRY))
def test_class_metadata(name):
    cls = algorithms.REGISTRY[name]
    assert issubclass(cls, torch.optim.Optimizer)
    assert cls.registry_name == name
    assert cls.paper, "paper citation missing"
    assert cls.variants and cls.variants[0] == "paper"
    doc = cls.__doc__ or ""
    assert "Defaults" in doc and ("\\begin{aligned}" in doc or "math::" in doc), "docstring needs box + defaults table"


def test_make_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown optimizer"):
        algorithms.make("nope", [torch.zeros(1, requires_grad=True)])


# ----------------------------------------------------------------------------- 1. direction
@pytest.mark.parametrize("info", INFOS, ids=INFO_IDS)
def test_goes_right_direction(info):
    kwargs = info.descent_kwargs or info.inputs[0].kwargs
    params = make_params(MATRIX_SHAPES)
    targets = make_targets(params)
    with torch.no_grad():
        initial = float(loss_fn(params, targets))
    run(info.name, kwargs, params, targets, 30)
    with torch.no_grad():
        final = float(loss_fn(params, targets))
    assert final < 0.95 * initial, f"{info.name}: loss {initial:.4f} -> {final:.4f}"


# ----------------------------------------------------------------------------- 2. groups, schedulers
@pytest.mark.parametrize("info,inp", ALL, ids=IDS)
def test_param_groups_behave_like_separate_optimizers(info, inp):
    kw = dict(inp.kwargs)
    lr0 = kw.pop("lr", 1e-2)
    params_a = make_params(MATRIX_SHAPES)
    params_b = [p.detach().clone().requires_grad_() for p in params_a]
    targets = make_targets(params_a)
    # one optimizer, two groups with different lr and seeds
    opt = algorithms.make(
        info.name,
        [{"params": [params_a[0]], "lr": lr0}, {"params": [params_a[1]], "lr": lr0 * 0.5, "seed": 7}],
        **kw,
    )
    sep = [
        algorithms.make(info.name, [params_b[0]], lr=lr0, **kw),
        algorithms.make(info.name, [params_b[1]], lr=lr0 * 0.5, **{**kw, "seed": 7}),
    ]
    for _ in range(6):
        if inp.step_requires_closure:  # the loss is separable across parameters, so per-optimizer closures agree
            opt.step(make_closure(opt, params_a, targets))
            for o in sep:
                o.step(make_closure(o, params_b, targets))
            continue
        opt.zero_grad()
        loss_fn(params_a, targets).backward()
        opt.step()
        for o in sep:
            o.zero_grad()
        loss_fn(params_b, targets).backward()
        for o in sep:
            o.step()
    for a, b in zip(params_a, params_b):
        assert torch.equal(a, b)


@pytest.mark.parametrize("info,inp", ALL, ids=IDS)
def test_lr_scheduler_takes_effect(info, inp):
    params = make_params([(10, 6)])
    targets = make_targets(params)
    opt = algorithms.make(info.name, params, **inp.kwargs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 if epoch < 2 else 0.0)
    closure = make_closure(opt, params, targets)
    snapshots = []
    for _ in range(5):
        opt.step(closure)
        sched.step()
        snapshots.append(params[0].detach().clone())
    assert not torch.equal(snapshots[0], snapshots[1]), "lr>0 steps must move the parameter"
    assert torch.equal(snapshots[2], snapshots[3]) and torch.equal(snapshots[3], snapshots[4]), (
        "after the scheduler sets lr=0 the parameter must stop moving"
    )


# ----------------------------------------------------------------------------- 3. None grads
@pytest.mark.parametrize("info,inp", ALL, ids=IDS)
def test_none_grad_is_skipped(info, inp):
    used = make_params([(10, 6)])
    unused = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    before = unused.detach().clone()
    targets = make_targets(used)
    opt = algorithms.make(info.name, used + [unused], **inp.kwargs)
    closure = make_closure(opt, used, targets)
    for _ in range(3):
        opt.step(closure)
    assert unused.grad is None
    assert torch.equal(unused, before)
    assert len(opt.state[unused]) == 0


# ----------------------------------------------------------------------------- 4. state dict
@pytest.mark.parametrize("info,inp", ALL, ids=IDS)
def test_state_dict_is_tensors_and_numbers_and_loads_weights_only(info, inp):
    params = make_params(MATRIX_SHAPES)
    targets = make_targets(params)
    opt = run(info.name, inp.kwargs, params, targets, 4)
    sd = opt.state_dict()
    for leaf in walk_state(sd["state"]):
        assert isinstance(leaf, (torch.Tensor, numbers.Number)) and not isinstance(leaf, bool) or leaf is None, (
            f"non-tensor state leaf {type(leaf).__name__}"
        )
    for group in sd["param_groups"]:
        for k, v in group.items():
            for leaf in walk_state(v):
                assert leaf is None or isinstance(leaf, (numbers.Number, str, torch.Tensor)), (k, type(leaf))
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    assert set(loaded["state"]) == set(sd["state"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("info,inp", ALL, ids=IDS)
def test_resume_is_bit_exact(info, inp, dtype):
    k = 5
    shapes = MATRIX_SHAPES + [(4, 3, 2)]
    ref = make_params(shapes, dtype=dtype)
    targets = make_targets(ref)
    run(info.name, inp.kwargs, ref, targets, 2 * k)

    first = make_params(shapes, dtype=dtype)
    opt = run(info.name, inp.kwargs, first, targets, k)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "params": [p.detach() for p in first]}, buf)
    del opt
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    resumed = [p.clone().requires_grad_() for p in ckpt["params"]]
    opt2 = algorithms.make(info.name, resumed, **inp.kwargs)
    opt2.load_state_dict(ckpt["opt"])
    closure = make_closure(opt2, resumed, targets)
    for _ in range(k):
        opt2.step(closure)
    for a, b in zip(ref, resumed):
        assert torch.equal(a, b), f"max diff {(a - b).abs().max().item():.3e}"


# ----------------------------------------------------------------------------- 5. determinism
@pytest.mark.parametrize("info,inp", ALL, ids=IDS)
def test_same_seed_same_trajectory(info, inp):
    outs = []
    for _ in range(2):
        params = make_params(MATRIX_SHAPES)
        run(info.name, {**inp.kwargs, "seed": 123}, params, make_targets(params), 8)
        outs.append(params)
    for a, b in zip(*outs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("info", [i for i in INFOS if i.uses_randomness], ids=lambda i: i.name)
def test_seed_changes_randomized_trajectory(info):
    outs = []
    for seed in (1, 2):
        params = make_params(MATRIX_SHAPES)
        run(info.name, {**info.inputs[0].kwargs, "seed": seed}, params, make_targets(params), 8)
        outs.append(params[0].detach())
    assert not torch.equal(*outs), "a different seed must change a randomized optimizer's trajectory"


# ----------------------------------------------------------------------------- 6. float64
@pytest.mark.parametrize("info,inp", ALL, ids=IDS)
def test_float64_end_to_end(info, inp):
    params = make_params(MATRIX_SHAPES, dtype=torch.float64)
    opt = run(info.name, inp.kwargs, params, make_targets(params), 4)
    variant = inp.kwargs.get("variant", "paper")
    allowed = info.fp32_state_keys.get(variant, frozenset())
    for p in params:
        assert p.dtype == torch.float64
        for key, value in opt.state[p].items():
            if isinstance(value, torch.Tensor) and value.is_floating_point() and key not in allowed:
                assert value.dtype == torch.float64, f"state[{key!r}] silently downcast to {value.dtype}"


# ----------------------------------------------------------------------------- 7. shapes
@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("info,inp", ALL, ids=IDS)
def test_shapes(info, inp, shape_name):
    shape = SHAPES[shape_name]
    params = make_params([shape])
    targets = make_targets(params)
    before = params[0].detach().clone()
    run(info.name, inp.kwargs, params, targets, 4)
    p = params[0]
    assert p.shape == shape and p.dtype == torch.float64
    assert torch.isfinite(p).all()
    if p.numel():
        assert not torch.equal(p, before), "a step with a non-zero gradient must move the parameter"


# ----------------------------------------------------------------------------- 8. bad input
@pytest.mark.parametrize(
    "info,err",
    [(i, e) for i in INFOS for e in i.error_inputs],
    ids=[f"{i.name}-{e.match}-{n}" for i in INFOS for n, e in enumerate(i.error_inputs)],
)
def test_bad_hyperparameters_raise_at_construction(info, err):
    p = torch.zeros(4, 3, requires_grad=True)
    kwargs = {**info.inputs[0].kwargs, **err.kwargs}
    with pytest.raises(err.error_type, match=err.match):
        algorithms.make(info.name, [p], **kwargs)


@pytest.mark.parametrize("info", INFOS, ids=INFO_IDS)
def test_every_optimizer_has_error_inputs(info):
    assert any(e.match == "lr" for e in info.error_inputs)


@pytest.mark.parametrize("info", INFOS, ids=INFO_IDS)
def test_sparse_gradient_raises(info):
    p = torch.zeros(5, 3, requires_grad=True)
    opt = algorithms.make(info.name, [p], **info.inputs[0].kwargs)
    p.grad = torch.eye(5, 3).to_sparse()
    with pytest.raises(TypeError, match="sparse"):
        opt.step()


@pytest.mark.parametrize("info", INFOS, ids=INFO_IDS)
def test_complex_parameters_work_or_raise_clearly(info):
    p = torch.randn(5, 3, dtype=torch.complex128, requires_grad=True)
    opt = algorithms.make(info.name, [p], **info.inputs[0].kwargs)
    p.grad = torch.randn_like(p)
    if info.supports_complex:
        opt.step()
        assert torch.isfinite(torch.view_as_real(p)).all()
    else:
        with pytest.raises(TypeError, match="complex"):
            opt.step()


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("info", INFOS, ids=INFO_IDS)
def test_nonfinite_raise_mode_names_parameter_and_changes_nothing(info, bad):
    params = make_params([(6, 4), (4,)])
    targets = make_targets(params)
    opt = algorithms.make(info.name, params, **{**info.inputs[0].kwargs, "nonfinite": "raise"})
    closure = make_closure(opt, params, targets)
    opt.step(closure)
    state_before = copy.deepcopy(opt.state_dict())
    params_before = [p.detach().clone() for p in params]
    closure()
    params[1].grad[2] = bad
    with pytest.raises(NonFiniteGradientError, match=r"\['params'\]\[1\]"):
        opt.step()
    for a, b in zip(params, params_before):
        assert torch.equal(a, b)
    after = opt.state_dict()
    for k, v in state_before["state"].items():
        for key, t in v.items():
            if isinstance(t, torch.Tensor):
                assert torch.equal(t, after["state"][k][key]), f"state {key} changed"


@pytest.mark.parametrize("info", INFOS, ids=INFO_IDS)
def test_nonfinite_default_policy_is_raise(info):
    assert inspect.signature(algorithms.REGISTRY[info.name]).parameters["nonfinite"].default == "raise"
    p = torch.zeros(4, 3, requires_grad=True)
    opt = algorithms.make(info.name, [p], **info.inputs[0].kwargs)
    p.grad = torch.full_like(p, math.nan)
    with pytest.raises(NonFiniteGradientError, match=r"\['params'\]\[0\]"):
        opt.step()


@pytest.mark.parametrize("info", INFOS, ids=INFO_IDS)
def test_nonfinite_ignore_policy_does_not_check(info):
    p = torch.zeros(4, 3, requires_grad=True)
    opt = algorithms.make(info.name, [p], **{**info.inputs[0].kwargs, "nonfinite": "ignore"})
    p.grad = torch.full_like(p, math.nan)
    opt.step()  # no host sync, no exception; NaN propagates as in torch.optim
    state_nan = any(torch.isnan(v).any() for v in opt.state[p].values() if isinstance(v, torch.Tensor) and v.is_floating_point())
    assert torch.isnan(p).any() or state_nan, "under 'ignore' the NaN reaches the parameter or the state"


@pytest.mark.parametrize("info", INFOS, ids=INFO_IDS)
def test_nonfinite_skip_policy_is_a_none_gradient_counted_and_warned_once(info):
    """``skip`` = the step that a ``None`` gradient would give, for the bad parameter only."""
    shapes = [(6, 4), (4,)]
    params, twins = make_params(shapes), make_params(shapes)
    targets = make_targets(params)
    kwargs = {**info.inputs[0].kwargs, "nonfinite": "skip"}
    opt, ref = algorithms.make(info.name, params, **kwargs), algorithms.make(info.name, twins, **kwargs)
    for o, ps in ((opt, params), (ref, twins)):
        o.step(make_closure(o, ps, targets))
    closure = make_closure(opt, params, targets)
    closure()
    bad_grad = params[1].grad.clone()
    bad_grad[2] = math.nan
    params[1].grad = bad_grad
    with pytest.warns(RuntimeWarning, match=r"\['params'\]\[1\].*skipped"):
        opt.step()
    assert params[1].grad is bad_grad, "the gradient is given back after the step"
    # the reference: the same gradients, with None for the skipped parameter
    make_closure(ref, twins, targets)()
    twins[1].grad = None
    ref.step()
    for a, b in zip(params, twins):
        assert torch.equal(a, b)
    assert int(opt.state[params[1]]["nonfinite_skips"]) == 1 and "nonfinite_skips" not in opt.state[params[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per optimizer
        opt.step()
    assert int(opt.state[params[1]]["nonfinite_skips"]) == 2
