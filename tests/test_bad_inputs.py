"""The bad-input matrix (tests/optim_db/bad_inputs.py): every case x every registered optimizer.

49 cases a new user tries (bad lr/betas/eps/weight_decay/rank/seed/variant/keyword, empty,
duplicated, non-tensor, non-leaf, shared and integer parameters, sparse and complex gradients,
non-finite gradients, add_param_group, state dicts of other optimizers / shapes / dtypes / group
counts / a model, torch.optim.AdamW's state dict, and good inputs: tensor lr, mixed shapes,
float32/bfloat16, None grads, closures, named and frozen parameters, the meta device, weights_only
resume, deepcopy, pickle, schedulers) x 17 optimizers = 833 cells.

Totals (``python -m tests.test_bad_inputs``), on the code before issue 14 (commit dee4160) and after:

=========  ======  =====
status     before  after
=========  ======  =====
ok         671     833
unclear    64      0
silent     95      0
crash      3       0
wrong      0       0
=========  ======  =====

Before: bare ``KeyError`` for foreign state dicts (16 sources x 17) and for a model's state dict;
state dicts for other shapes/dtypes accepted (the error came at the next step, or never); duplicate
parameters only warned; an int64 parameter failed deep in the arithmetic; ``add_param_group``
accepted ``lr=-1`` (MARS added the group, then raised); ``batch_dims`` larger than a parameter's
rank accepted by the elementwise methods; one NaN gradient entry poisoned parameters silently;
AdaRankGrad crashed on the meta device, MARS-Shampoo on bfloat16 (no half-precision SVD);
``torch.optim.AdamW``'s state dict did not load into ``adam``.
"""

from __future__ import annotations

import math

import pytest
import torch

import algorithms
from algorithms.adam import Adam

from .optim_db import OPTIM_DB, OptimizerInfo, OptimizerInput
from .optim_db.bad_inputs import CASES, STATUSES, evaluate, matrix, totals

NAMES = sorted(OPTIM_DB)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("name", NAMES)
def test_bad_input_matrix(name, case):
    outcome = evaluate(OPTIM_DB[name], case)
    assert outcome.status == "ok", f"{name} / {case.desc}: {outcome.status}: {outcome.detail}"


def test_matrix_covers_every_registered_optimizer_and_enough_cases():
    assert set(NAMES) == set(algorithms.REGISTRY)
    assert len(CASES) >= 29 and len({c.name for c in CASES}) == len(CASES)


# ----------------------------------------------------------------------------- power: planted bugs
class _NoValidation(Adam):
    """Accepts any hyperparameter (a forgotten _validate_group)."""

    def _validate_group(self, group):
        pass


class _TorchCheckpoints(Adam):
    """torch's own state_dict/load_state_dict: no origin, shape or key checks."""

    state_dict = torch.optim.Optimizer.state_dict
    load_state_dict = torch.optim.Optimizer.load_state_dict


class _NaNThrough(Adam):
    """The old default: non-finite gradients flow through silently."""

    def __init__(self, params, lr=1e-3, **kw):
        kw.setdefault("nonfinite", "ignore")
        super().__init__(params, lr, **kw)


class _GeneratorOnParamDevice(algorithms.REGISTRY["adarankgrad"]):
    """The old meta-device bug: the generator is created on the parameter's device."""

    def generator(self, p):
        return torch.Generator(device=p.device)


@pytest.mark.parametrize(
    "cls,base,case,expected",
    [
        (_NoValidation, "adam", "lr_negative", "silent"),
        (_NoValidation, "adam", "add_param_group_bad_lr", "silent"),
        (_TorchCheckpoints, "adam", "shape_mismatch_state_dict", "silent"),
        (_TorchCheckpoints, "adam", "foreign_state_dict", "silent"),
        (_TorchCheckpoints, "adam", "model_state_dict", "unclear"),
        (_NaNThrough, "adam", "nonfinite_default", "silent"),
        (_GeneratorOnParamDevice, "adarankgrad", "meta_device", "crash"),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_matrix_detects_planted_bugs(monkeypatch, cls, base, case, expected):
    name = f"planted_{cls.__name__.lower()}"
    monkeypatch.setitem(algorithms.REGISTRY, name, cls)
    monkeypatch.setattr(cls, "registry_name", name, raising=False)
    info = OptimizerInfo(name=name, inputs=[OptimizerInput(dict(OPTIM_DB[base].inputs[0].kwargs))])
    by_name = {c.name: c for c in CASES}
    assert evaluate(info, by_name[case]).status == expected


# ----------------------------------------------------------------------------- the NaN spread table
#: non-finite parameter entries after 10 steps, one NaN gradient entry at step 2 / at step 1
#: (the table in the algorithms._base docstring)
NAN_SPREAD = {
    "sgd": (1, 1), "adam": (1, 1), "adagrad_coordinate": (1, 1), "mars_adamw": (1, 1),
    "lion": (0, 0), "mars_lion": (0, 0),
    "adagrad_subset_norm": (6, 6), "adam_sn": (6, 6), "rmsprop_sn": (6, 6),
    "galore_adamw": (6, 48), "adarankgrad": (6, 48), "subspace_momentum": (6, 48), "adam_sn_sm": (6, 48),
    "fira_adamw": (48, 48), "ldadam": (48, 48), "mars_shampoo": (48, 48),
    "adagrad_norm": (56, 56),
}


def nan_spread(name: str, bad_step: int, steps: int = 10) -> int:
    """Non-finite entries of a 6x8 matrix and an 8-vector after ``steps`` steps under
    ``nonfinite="ignore"``, with one NaN at entry (2, 1) of the matrix's gradient at ``bad_step``."""
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in [(6, 8), (8,)]]
    opt = algorithms.make(name, params, **{**OPTIM_DB[name].inputs[0].kwargs, "nonfinite": "ignore"})
    for t in range(1, steps + 1):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        if t == bad_step:
            params[0].grad[2, 1] = math.nan
        opt.step()
    return sum(int((~torch.isfinite(p)).sum()) for p in params)


@pytest.mark.parametrize("name", NAMES)
def test_nan_spread_under_ignore_is_the_documented_table(name):
    assert (nan_spread(name, 2), nan_spread(name, 1)) == NAN_SPREAD[name]


@pytest.mark.parametrize("name", NAMES)
def test_default_policy_stops_the_spread(name):
    with pytest.raises(algorithms.NonFiniteGradientError):
        g = torch.Generator().manual_seed(0)
        p = torch.randn(6, 8, generator=g, dtype=torch.float64, requires_grad=True)
        opt = algorithms.make(name, [p], **OPTIM_DB[name].inputs[0].kwargs)
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        p.grad[2, 1] = math.nan
        opt.step()


# ----------------------------------------------------------------------------- messages
def _stepped(name, shapes, dtype=torch.float64, **kw):
    params = [torch.randn(s, dtype=dtype).requires_grad_() for s in shapes]
    opt = algorithms.make(name, params, **{**OPTIM_DB[name].inputs[0].kwargs, **kw})
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    return opt, params


def test_shape_mismatch_message_names_the_parameter_and_both_shapes():
    src, _ = _stepped("galore_adamw", [(4, 6), (5,)])
    dst, _ = _stepped("galore_adamw", [(6, 4), (5,)])
    with pytest.raises(ValueError, match=r"\['params'\]\[0\] \(shape \(6, 4\)\): the state dict was saved for "
                                         r"shape \(4, 6\) float64, this parameter has shape \(6, 4\) float64"):
        dst.load_state_dict(src.state_dict())


def test_foreign_state_dict_names_the_source():
    src, _ = _stepped("ldadam", [(6, 4)])
    dst, _ = _stepped("adam", [(6, 4)])
    with pytest.raises(ValueError, match=r"from optimizer 'ldadam', this optimizer is 'adam'"):
        dst.load_state_dict(src.state_dict())


def test_state_dict_without_origin_names_the_first_missing_key():
    src, _ = _stepped("sgd", [(6, 4)])
    sd = src.state_dict()
    del sd["optverify"]
    dst, _ = _stepped("adam", [(6, 4)])
    with pytest.raises(ValueError, match=r"param_groups\[0\] of the state dict has no 'betas'"):
        dst.load_state_dict(sd)


def test_variant_mismatch_is_named():
    src, _ = _stepped("galore_adamw", [(6, 4)], variant="official")
    dst, _ = _stepped("galore_adamw", [(6, 4)])
    with pytest.raises(ValueError, match=r"variant='official'.*variant='paper'"):
        dst.load_state_dict(src.state_dict())


def test_bad_saved_hyperparameter_is_named():
    src, _ = _stepped("adam", [(6, 4)])
    sd = src.state_dict()
    sd["param_groups"][0]["lr"] = -1.0
    dst, _ = _stepped("adam", [(6, 4)])
    with pytest.raises(ValueError, match=r"param_groups\[0\] of the state dict: lr must be >= 0"):
        dst.load_state_dict(sd)


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_torch_adam_state_dicts_load_into_adam_and_continue_identically(cls, weight_decay):
    g = torch.Generator().manual_seed(0)
    theirs = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in [(6, 4), (4,)]]
    ours = [p.detach().clone().requires_grad_() for p in theirs]
    ref = cls(theirs, lr=1e-2, weight_decay=weight_decay)
    grads = [[torch.randn(p.shape, generator=g, dtype=p.dtype) for p in theirs] for _ in range(6)]
    for grad in grads[:3]:
        for p, gr in zip(theirs, grad):
            p.grad = gr.clone()
        ref.step()
    for a, b in zip(ours, theirs):
        a.data.copy_(b.detach())
    opt = algorithms.make("adam", ours)
    opt.load_state_dict(ref.state_dict())
    assert opt.param_groups[0]["decoupled_weight_decay"] is (cls is torch.optim.AdamW)
    assert opt.state[ours[0]]["step"].dtype == torch.int64 and int(opt.state[ours[0]]["step"]) == 3
    for grad in grads[3:]:
        for p, q, gr in zip(theirs, ours, grad):
            p.grad, q.grad = gr.clone(), gr.clone()
        ref.step()
        opt.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-15)


def test_torch_amsgrad_state_dict_is_refused():
    p = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    ref = torch.optim.AdamW([p], amsgrad=True)
    p.grad = torch.randn_like(p)
    ref.step()
    opt = algorithms.make("adam", [p.detach().clone().requires_grad_()])
    with pytest.raises(ValueError, match="amsgrad=True"):
        opt.load_state_dict(ref.state_dict())


def test_meta_device_state_has_the_real_shapes():
    """Memory planning: the meta step's state has the shapes a real step gives."""
    for name in NAMES:
        kw = OPTIM_DB[name].inputs[0].kwargs
        if OPTIM_DB[name].inputs[0].step_requires_closure:
            continue
        real, _ = _stepped(name, [(6, 4), (4,)])
        meta_params = [torch.empty(s, dtype=torch.float64, device="meta", requires_grad=True) for s in [(6, 4), (4,)]]
        meta = algorithms.make(name, meta_params, **kw)
        for p in meta_params:
            p.grad = torch.empty_like(p)
        meta.step()
        for (k, v), (k2, v2) in zip(sorted(real.state_dict()["state"].items()), sorted(meta.state_dict()["state"].items())):
            assert sorted(v) == sorted(v2), name
            for key in v:
                if isinstance(v[key], torch.Tensor) and key != "rng_state":
                    assert v[key].shape == v2[key].shape, (name, key)


def test_a_stored_lookahead_gradient_is_never_skipped():
    """MARS look-ahead: a non-finite gradient given to store_lookahead_grads() raises under "skip" too
    (there is no step to skip; the next step would use it), and the gradient is left in place."""
    p = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    opt = algorithms.make("mars_adamw", [p], estimator="exact_lookahead", nonfinite="skip")
    p.grad = torch.full_like(p, math.nan)
    grad = p.grad
    with pytest.raises(algorithms.NonFiniteGradientError):
        opt.store_lookahead_grads()
    assert p.grad is grad and "lookahead_grad" not in opt.state[p]


def _main() -> None:
    results = matrix()
    for (name, case), o in results.items():
        if o.status != "ok":
            print(f"{o.status:8s} {name:20s} {case:28s} {o.detail}")
    t = totals(results)
    print(f"{len(CASES)} cases x {len(NAMES)} optimizers = {len(results)}: "
          + ", ".join(f"{k} {t[k]}" for k in STATUSES))


if __name__ == "__main__":
    _main()
