"""The bad-input matrix: what a new user tries, run against every registered optimizer.

Each :class:`Case` is one thing a user does (a bad learning rate, a duplicated parameter, a state
dict from another optimizer, the meta device, ...). A case either is *bad* input, which must give
a clear error (the right exception type and a message naming the argument or the parameter, with
the optimizer unchanged where it existed before), or *good* input, which must run and give a sane
result. :func:`evaluate` runs one case on one optimizer and returns an :class:`Outcome`:

``ok``       the contract holds
``unclear``  bad input, but the error is of the wrong type or does not say what is wrong
             (a bare ``KeyError``, a broadcasting ``RuntimeError`` at the next ``step()``)
``silent``   bad input accepted without an error (or a NaN spread without a word)
``crash``    good input raised
``wrong``    good input ran but gave a wrong result

``python -m tests.test_bad_inputs`` prints the failing cells and the totals (the numbers quoted in
tests/test_bad_inputs.py).
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import re
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

import algorithms
from algorithms import NonFiniteGradientError

from . import OptimizerInfo


def optim_db() -> dict[str, OptimizerInfo]:
    """The database (imported lazily: this module is itself part of the package being collected)."""
    from . import OPTIM_DB

    return OPTIM_DB

SHAPES = [(6, 4), (4,)]
STATUSES = ("ok", "unclear", "silent", "crash", "wrong")
#: a message names a parameter the way ReferenceOptimizer labels them (position or name)
PARAM_LABEL = r"\['params'\]\[\d+\]|'[\w.]+' \(shape"


class Breach(Exception):
    """The contract does not hold; ``status`` is one of :data:`STATUSES` other than ``ok``."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Outcome:
    status: str
    detail: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "bad" or "good" (some cases are good for some optimizers only; the function decides)
    run: Callable[[OptimizerInfo], None]
    desc: str


# ----------------------------------------------------------------------------- helpers
def base_kwargs(info: OptimizerInfo) -> dict:
    return dict(info.inputs[0].kwargs)


def make_params(shapes=SHAPES, dtype=torch.float64, device="cpu", seed=0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype=dtype, device=device).requires_grad_()
            for s in shapes]


def loss_of(params) -> torch.Tensor:
    """A smooth loss with rank > 1 matrix gradients (the contract battery's shape)."""
    total = 0.0
    for i, p in enumerate(params):
        c = 0.3 * (i + 1)
        total = total + torch.log1p((p - c) ** 2).sum()
        if p.dim() == 2 and p.numel():
            total = total + 0.1 * (p @ p.mT).pow(2).sum() / p.numel()
    return total


def closure_for(opt, params):
    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_of(params)
        loss.backward()
        return loss

    return closure


def step(opt, params, n: int = 1):
    loss = None
    for _ in range(n):
        loss = opt.step(closure_for(opt, params))
    return loss


def new_opt(info: OptimizerInfo, params, **overrides):
    return algorithms.make(info.name, params, **{**base_kwargs(info), **overrides})


def describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}"


def expect_error(action: Callable[[], object], errors, pattern: str) -> BaseException:
    """``action`` must raise one of ``errors`` with a message matching ``pattern``."""
    try:
        action()
    except errors as exc:
        if re.search(pattern, str(exc)):
            return exc
        raise Breach("unclear", f"message does not match {pattern!r}: {describe(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - any other exception is an unclear crash
        raise Breach("unclear", describe(exc)) from None
    raise Breach("silent", "accepted without an error")


def expect_runs(action: Callable[[], object]):
    try:
        return action()
    except Exception as exc:  # noqa: BLE001
        raise Breach("crash", describe(exc)) from None


def check(condition: bool, detail: str) -> None:
    if not condition:
        raise Breach("wrong", detail)


def snapshot(opt) -> dict:
    return copy.deepcopy(opt.state_dict())


def same_tree(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_tree(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def expect_unchanged(opt, before: dict, what: str) -> None:
    if not same_tree(snapshot(opt), before):
        raise Breach("unclear", f"{what}: the error came after the optimizer was changed")


def stepped(info: OptimizerInfo, shapes=SHAPES, dtype=torch.float64, n: int = 2, **overrides):
    params = make_params(shapes, dtype=dtype)
    opt = new_opt(info, params, **overrides)
    step(opt, params, n)
    return opt, params


def other_input_kwargs(name: str) -> dict:
    return dict(optim_db()[name].inputs[0].kwargs)


# ----------------------------------------------------------------------------- hyperparameters
def _bad_kwarg(key, value, errors, pattern):
    def run(info):
        expect_error(lambda: new_opt(info, make_params(), **{key: value}), errors, pattern)

    return run


def _good_lr_tensor(info):
    params = make_params()
    before = [p.detach().clone() for p in params]
    opt = expect_runs(lambda: new_opt(info, params, lr=torch.tensor(float(base_kwargs(info).get("lr", 1e-2)))))
    expect_runs(lambda: step(opt, params, 2))
    check(all(torch.isfinite(p).all() for p in params), "non-finite parameter")
    check(not torch.equal(params[0], before[0]), "the parameter did not move")


def _rank_too_large(info):
    """A rank above min(m, n): a ValueError naming ``rank`` (or, where truncation is the documented
    rule, a normal run); optimizers without a ``rank`` argument name it in their TypeError."""
    params = make_params()
    try:
        opt = new_opt(info, params, rank=1000)
    except (TypeError, ValueError) as exc:
        if re.search(r"rank", str(exc)):
            return
        raise Breach("unclear", describe(exc)) from None
    except Exception as exc:  # noqa: BLE001
        raise Breach("unclear", describe(exc)) from None
    try:
        step(opt, params, 2)
    except (TypeError, ValueError) as exc:
        if re.search(r"rank", str(exc)):
            return
        raise Breach("unclear", f"at step(): {describe(exc)}") from None
    except Exception as exc:  # noqa: BLE001
        raise Breach("unclear", f"at step(): {describe(exc)}") from None
    check(all(torch.isfinite(p).all() for p in params), "rank=1000 ran to a non-finite parameter")


def _rank_zero(info):
    """``rank=0``: a ValueError naming ``rank``, except where the class documents ``rank=0`` as an exact
    reduction (Subspace-Momentum, Adam-SN-SM: the SGD part only), where it must run."""
    if "``rank=0``" in (algorithms.REGISTRY[info.name].__doc__ or ""):
        params = make_params()
        opt = expect_runs(lambda: new_opt(info, params, rank=0))
        expect_runs(lambda: step(opt, params, 2))
        check(all(torch.isfinite(p).all() for p in params), "non-finite parameter")
        return
    expect_error(lambda: new_opt(info, make_params(), rank=0), (TypeError, ValueError), r"\brank\b")


def _batch_dims_too_large(info):
    def action():
        params = make_params()
        opt = new_opt(info, params, batch_dims=3)
        step(opt, params)

    expect_error(action, (TypeError, ValueError), r"batch_dims")


# ----------------------------------------------------------------------------- parameters
def _empty_params(info):
    expect_error(lambda: new_opt(info, []), ValueError, r"empty")


def _duplicate_params(info):
    p = make_params([(6, 4)])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch only warns; the case asks for an error
        expect_error(lambda: new_opt(info, [p, p]), ValueError, r"duplicate|more than once")


def _single_tensor(info):
    expect_error(lambda: new_opt(info, make_params([(6, 4)])[0]), TypeError, r"iterable")


def _not_tensors(info):
    expect_error(lambda: new_opt(info, [1.0, 2.0]), TypeError, r"Tensor")


def _non_leaf(info):
    p = make_params([(6, 4)])[0]
    expect_error(lambda: new_opt(info, [p * 2]), ValueError, r"leaf")


def _param_in_two_groups(info):
    p, q = make_params()
    expect_error(lambda: new_opt(info, [{"params": [p, q]}, {"params": [p]}]), ValueError, r"more than one")


def _integer_param(info):
    def action():
        p = torch.arange(24).reshape(6, 4)
        opt = new_opt(info, [p])
        p.grad = torch.ones_like(p)
        opt.step()

    expect_error(action, (TypeError, ValueError), rf"(floating|dtype).*({PARAM_LABEL})|({PARAM_LABEL}).*(floating|dtype)")


# ----------------------------------------------------------------------------- gradients
def _sparse_grad(info):
    def action():
        p = make_params([(6, 4)])[0]
        opt = new_opt(info, [p])
        p.grad = torch.eye(6, 4, dtype=p.dtype).to_sparse()
        opt.step()

    expect_error(action, TypeError, r"sparse")


def _complex_param(info):
    p = torch.randn(6, 4, dtype=torch.complex128, requires_grad=True)
    opt = new_opt(info, [p])
    p.grad = torch.randn_like(p)
    if info.supports_complex:
        expect_runs(opt.step)
        check(bool(torch.isfinite(torch.view_as_real(p)).all()), "non-finite complex parameter")
    else:
        expect_error(opt.step, TypeError, r"complex")


def _nonfinite_raise(info):
    params = make_params()
    opt = new_opt(info, params, nonfinite="raise")
    step(opt, params)
    before, values = snapshot(opt), [p.detach().clone() for p in params]
    closure_for(opt, params)()
    params[1].grad[2] = math.nan
    expect_error(opt.step, NonFiniteGradientError, r"\['params'\]\[1\]")
    expect_unchanged(opt, before, "nonfinite='raise'")
    check(all(torch.equal(a, b) for a, b in zip(params, values)), "a parameter changed")


def _nonfinite_default(info):
    """One NaN entry in one gradient under the default policy: an error naming the parameter, or a
    warning with every parameter finite afterwards; never a NaN spread without a word."""
    params = make_params()
    opt = new_opt(info, params)
    step(opt, params)
    closure_for(opt, params)()
    params[0].grad[2, 1] = math.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            opt.step()
        except NonFiniteGradientError as exc:
            if not re.search(PARAM_LABEL, str(exc)):
                raise Breach("unclear", describe(exc)) from None
            return
        except Exception as exc:  # noqa: BLE001
            raise Breach("unclear", describe(exc)) from None
        step(opt, params, 3)
    poisoned = sum(int((~torch.isfinite(p)).sum()) for p in params)
    total = sum(p.numel() for p in params)
    warned = any("finite" in str(w.message).lower() or "nan" in str(w.message).lower() for w in caught)
    if poisoned:
        raise Breach("silent" if not warned else "wrong", f"{poisoned}/{total} parameter entries non-finite")
    if not warned:
        raise Breach("silent", "the NaN gradient was dropped without a warning")


# ----------------------------------------------------------------------------- param groups
def _add_param_group_bad_lr(info):
    params = make_params()
    opt = new_opt(info, params[:1])
    n_groups = len(opt.param_groups)
    expect_error(lambda: opt.add_param_group({"params": [params[1]], "lr": -1.0}), ValueError, r"lr")
    if len(opt.param_groups) != n_groups:
        raise Breach("unclear", "the rejected group was added anyway")


def _add_param_group_duplicate(info):
    params = make_params()
    opt = new_opt(info, params)
    expect_error(lambda: opt.add_param_group({"params": [params[0]]}), ValueError, r"more than one|duplicate")


def _add_param_group_good(info):
    params = make_params()
    opt = new_opt(info, params[:1])
    expect_runs(lambda: opt.add_param_group({"params": [params[1]], "lr": 0.01}))
    before = params[1].detach().clone()
    expect_runs(lambda: step(opt, params, 2))
    check(not torch.equal(params[1], before), "the added parameter did not move")


def _lr_scheduler(info):
    params = make_params()
    opt = new_opt(info, params)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.0)
    expect_runs(lambda: (step(opt, params), sched.step()))
    frozen = params[0].detach().clone()
    expect_runs(lambda: step(opt, params, 2))
    check(torch.equal(params[0], frozen), "lr=0 from the scheduler did not stop the parameter")


# ----------------------------------------------------------------------------- good inputs
def _mixed_shapes(info):
    shapes = [(), (7,), (6, 4), (3, 4, 2), (0, 5)]
    params = make_params(shapes)
    before = [p.detach().clone() for p in params]
    opt = expect_runs(lambda: new_opt(info, params))
    expect_runs(lambda: step(opt, params, 3))
    check(all(torch.isfinite(p).all() for p in params), "non-finite parameter")
    check(all(not torch.equal(p, b) for p, b in zip(params, before) if p.numel()), "a parameter did not move")


def _low_precision(dtype):
    def run(info):
        params = make_params(dtype=dtype)
        opt = expect_runs(lambda: new_opt(info, params))
        expect_runs(lambda: step(opt, params, 3))
        check(all(p.dtype == dtype for p in params), "parameter dtype changed")
        check(all(torch.isfinite(p).all() for p in params), "non-finite parameter")

    return run


def _none_grad(info):
    used, unused = make_params()
    before = unused.detach().clone()
    opt = new_opt(info, [used, unused])
    expect_runs(lambda: step(opt, [used], 2))
    check(torch.equal(unused, before) and len(opt.state[unused]) == 0, "a parameter without a gradient changed")


def _no_grads(info):
    params = make_params()
    opt = new_opt(info, params)
    before = [p.detach().clone() for p in params]
    expect_runs(opt.step)
    check(all(torch.equal(p, b) for p, b in zip(params, before)), "a step without gradients moved a parameter")


def _closure_loss(info):
    params = make_params()
    opt = new_opt(info, params)
    loss = expect_runs(lambda: step(opt, params))
    check(isinstance(loss, torch.Tensor) and loss.ndim == 0, f"step(closure) returned {loss!r}, not the loss")


def _named_params(info):
    params = make_params()
    opt = expect_runs(lambda: new_opt(info, list(zip(["weight", "bias"], params))))
    expect_runs(lambda: step(opt, params, 2))
    check(all(torch.isfinite(p).all() for p in params), "non-finite parameter")


def _frozen_param(info):
    params = make_params()
    frozen = torch.randn(3, 3, dtype=torch.float64)
    before = frozen.clone()
    opt = expect_runs(lambda: new_opt(info, params + [frozen]))
    expect_runs(lambda: step(opt, params, 2))
    check(torch.equal(frozen, before), "a frozen tensor moved")


def _meta_device(info):
    """Memory planning: construct and step on the meta device; every state tensor stays on meta."""
    params = make_params(device="meta")
    opt = expect_runs(lambda: new_opt(info, params))

    def run():
        for p in params:
            p.grad = torch.empty_like(p)
        opt.step(lambda: torch.empty((), device="meta")) if info.inputs[0].step_requires_closure else opt.step()

    expect_runs(run)
    for p in params:
        for key, value in opt.state[p].items():
            if isinstance(value, torch.Tensor) and key not in type(opt).host_state_keys:
                check(value.device.type == "meta", f"state {key!r} on {value.device}")


def _state_dict_roundtrip(info):
    shapes = SHAPES
    ref = make_params(shapes)
    step(new_opt(info, ref), ref, 4)
    first = make_params(shapes)
    opt = new_opt(info, first)
    step(opt, first, 2)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "params": [p.detach() for p in first]}, buf)
    buf.seek(0)
    ckpt = expect_runs(lambda: torch.load(buf, weights_only=True))
    resumed = [p.clone().requires_grad_() for p in ckpt["params"]]
    opt2 = new_opt(info, resumed)
    expect_runs(lambda: opt2.load_state_dict(ckpt["opt"]))
    expect_runs(lambda: step(opt2, resumed, 2))
    check(all(torch.equal(a, b) for a, b in zip(ref, resumed)), "resume is not bit-exact")


def _deepcopy(info):
    opt, params = stepped(info)
    clone = expect_runs(lambda: copy.deepcopy(opt))
    check(same_tree(clone.state_dict(), opt.state_dict()), "deepcopy changed the state")


def _pickle(info):
    opt, params = stepped(info)
    clone = expect_runs(lambda: pickle.loads(pickle.dumps(opt)))
    check(same_tree(clone.state_dict(), opt.state_dict()), "pickle changed the state")


# ----------------------------------------------------------------------------- state dicts
def _load_bad(info, sd, pattern: str, *, shapes=SHAPES):
    params = make_params(shapes)
    opt = new_opt(info, params)
    step(opt, params)
    before = snapshot(opt)
    expect_error(lambda: opt.load_state_dict(sd), ValueError, pattern)
    expect_unchanged(opt, before, "load_state_dict")
    expect_runs(lambda: step(opt, params))


def _foreign_state_dict(info):
    """A state dict of every other registered optimizer (same parameter shapes): a ValueError saying
    what differs, and the optimizer unchanged."""
    failures = []
    for other in sorted(optim_db()):
        if other == info.name:
            continue
        params = make_params()
        src = algorithms.make(other, params, **other_input_kwargs(other))
        step(src, params)
        try:
            _load_bad(info, src.state_dict(), r".")
        except Breach as exc:
            failures.append((exc.status, f"from {other}: {exc.detail}"))
    if failures:
        worst = "silent" if any(s == "silent" for s, _ in failures) else "unclear"
        raise Breach(worst, f"{len(failures)}/16 sources; first: {failures[0][1]}")


def _torch_adamw_state_dict(info):
    """``torch.optim.AdamW``'s state dict: loads into ``adam`` (same maths) and continues as AdamW;
    any other optimizer refuses it with a ValueError."""
    params = make_params()
    torch_params = [p.detach().clone().requires_grad_() for p in params]
    adamw = torch.optim.AdamW(torch_params, lr=1e-2, weight_decay=0.1)
    step(adamw, torch_params, 2)
    if info.name != "adam":
        _load_bad(info, adamw.state_dict(), r".")
        return
    ours_params = [p.detach().clone().requires_grad_() for p in torch_params]
    ours = algorithms.make("adam", ours_params)
    expect_runs(lambda: ours.load_state_dict(adamw.state_dict()))
    expect_runs(lambda: step(ours, ours_params, 3))
    step(adamw, torch_params, 3)
    err = max(float((a - b).abs().max()) for a, b in zip(ours_params, torch_params))
    check(err < 1e-12, f"adam after loading AdamW's state differs from AdamW by {err:.2e}")


def _shape_mismatch(info):
    opt, _ = stepped(info, shapes=[(4, 6), (5,)])
    _load_bad(info, opt.state_dict(), r"shape.*\(6, 4\).*\(4, 6\)|shape.*\(4, 6\).*\(6, 4\)")


def _dtype_mismatch(info):
    opt, _ = stepped(info, dtype=torch.float32)
    _load_bad(info, opt.state_dict(), r"float32")


def _group_count_mismatch(info):
    params = make_params()
    src = new_opt(info, [{"params": [params[0]]}, {"params": [params[1]]}])
    step(src, params)
    _load_bad(info, src.state_dict(), r"group")


def _model_state_dict(info):
    model = torch.nn.Linear(4, 6).double()
    _load_bad(info, model.state_dict(), r"state dict|state_dict|param_groups")


# ----------------------------------------------------------------------------- the matrix
CASES: list[Case] = [
    Case("lr_negative", "bad", _bad_kwarg("lr", -0.1, ValueError, r"\blr\b"), "lr=-0.1"),
    Case("lr_string", "bad", _bad_kwarg("lr", "fast", TypeError, r"\blr\b"), "lr='fast'"),
    Case("lr_nan", "bad", _bad_kwarg("lr", math.nan, ValueError, r"\blr\b"), "lr=nan"),
    Case("lr_tensor", "good", _good_lr_tensor, "lr=torch.tensor(...) (torch.optim accepts it)"),
    Case("betas_out_of_range", "bad", _bad_kwarg("betas", (1.5, 0.999), (TypeError, ValueError), r"betas"),
         "betas=(1.5, 0.999)"),
    Case("betas_not_pair", "bad", _bad_kwarg("betas", 0.9, (TypeError, ValueError), r"betas"), "betas=0.9"),
    Case("eps_negative", "bad", _bad_kwarg("eps", -1e-8, (TypeError, ValueError), r"\beps\b"), "eps=-1e-8"),
    Case("weight_decay_negative", "bad", _bad_kwarg("weight_decay", -0.1, ValueError, r"weight_decay"),
         "weight_decay=-0.1"),
    Case("rank_zero", "bad", _rank_zero, "rank=0 (an error, or the documented reduction to SGD)"),
    Case("rank_float", "bad", _bad_kwarg("rank", 2.5, TypeError, r"\brank\b"), "rank=2.5"),
    Case("rank_too_large", "bad", _rank_too_large, "rank=1000 on a 6x4 matrix"),
    Case("seed_negative", "bad", _bad_kwarg("seed", -3, ValueError, r"\bseed\b"), "seed=-3"),
    Case("nonfinite_unknown", "bad", _bad_kwarg("nonfinite", "maybe", ValueError, r"nonfinite"), "nonfinite='maybe'"),
    Case("variant_unknown", "bad", _bad_kwarg("variant", "v2", (TypeError, ValueError), r"variant"), "variant='v2'"),
    Case("unknown_kwarg", "bad", _bad_kwarg("learning_rate", 0.1, TypeError, r"learning_rate"), "learning_rate=0.1"),
    Case("batch_dims_too_large", "bad", _batch_dims_too_large, "batch_dims=3 with 2-D and 1-D parameters"),
    Case("empty_params", "bad", _empty_params, "params=[]"),
    Case("duplicate_params", "bad", _duplicate_params, "params=[p, p]"),
    Case("single_tensor", "bad", _single_tensor, "params=p (a tensor, not a list)"),
    Case("not_tensors", "bad", _not_tensors, "params=[1.0, 2.0]"),
    Case("non_leaf", "bad", _non_leaf, "params=[p * 2]"),
    Case("param_in_two_groups", "bad", _param_in_two_groups, "one tensor in two groups"),
    Case("integer_param", "bad", _integer_param, "an int64 parameter with an int64 gradient"),
    Case("sparse_grad", "bad", _sparse_grad, "a sparse gradient"),
    Case("complex_param", "bad", _complex_param, "a complex parameter (runs where supported)"),
    Case("nonfinite_raise", "bad", _nonfinite_raise, "nonfinite='raise' and a NaN gradient"),
    Case("nonfinite_default", "bad", _nonfinite_default, "one NaN gradient entry under the default policy"),
    Case("add_param_group_bad_lr", "bad", _add_param_group_bad_lr, "add_param_group(lr=-1)"),
    Case("add_param_group_duplicate", "bad", _add_param_group_duplicate, "add_param_group with a managed tensor"),
    Case("foreign_state_dict", "bad", _foreign_state_dict, "load_state_dict from each other optimizer"),
    Case("torch_adamw_state_dict", "bad", _torch_adamw_state_dict, "load torch.optim.AdamW's state dict"),
    Case("shape_mismatch_state_dict", "bad", _shape_mismatch, "state dict saved for other shapes"),
    Case("dtype_mismatch_state_dict", "bad", _dtype_mismatch, "state dict saved for float32 parameters"),
    Case("group_count_state_dict", "bad", _group_count_mismatch, "state dict with two groups into one"),
    Case("model_state_dict", "bad", _model_state_dict, "a model's state dict by mistake"),
    Case("mixed_shapes", "good", _mixed_shapes, "0-D, 1-D, 2-D, 3-D and zero-size parameters together"),
    Case("float32", "good", _low_precision(torch.float32), "float32 parameters"),
    Case("bfloat16", "good", _low_precision(torch.bfloat16), "bfloat16 parameters"),
    Case("none_grad", "good", _none_grad, "a parameter whose grad is None"),
    Case("no_grads", "good", _no_grads, "step() before any backward"),
    Case("closure_loss", "good", _closure_loss, "step(closure) returns the loss"),
    Case("named_params", "good", _named_params, "named parameters (name, tensor)"),
    Case("frozen_param", "good", _frozen_param, "a tensor without requires_grad"),
    Case("meta_device", "good", _meta_device, "parameters on the meta device"),
    Case("state_dict_roundtrip", "good", _state_dict_roundtrip, "torch.save/torch.load(weights_only) resume"),
    Case("deepcopy", "good", _deepcopy, "copy.deepcopy(opt)"),
    Case("pickle", "good", _pickle, "pickle round trip"),
    Case("add_param_group", "good", _add_param_group_good, "add_param_group then step"),
    Case("lr_scheduler", "good", _lr_scheduler, "StepLR to lr=0"),
]


def evaluate(info: OptimizerInfo, case: Case) -> Outcome:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            case.run(info)
        except Breach as exc:
            return Outcome(exc.status, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a crash inside the scenario's own set-up
            return Outcome("crash", f"set-up: {describe(exc)}")
    return Outcome("ok")


def matrix(names=None, cases=None) -> dict[tuple[str, str], Outcome]:
    names = names or sorted(optim_db())
    return {(n, c.name): evaluate(optim_db()[n], c) for n in names for c in (cases or CASES)}


def totals(results: dict[tuple[str, str], Outcome]) -> dict[str, int]:
    out = {s: 0 for s in STATUSES}
    for o in results.values():
        out[o.status] += 1
    return out
