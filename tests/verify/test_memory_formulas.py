"""Measured optimizer state == the sympy formula, EXACTLY (elements and bytes), for every registered
algorithm, every input of its OptimizerInfo, every shape of the contract battery, float32 and float64,
batched parameters and a real (tiny) LLaMA model; planted bugs must break the equality."""

from __future__ import annotations

import warnings

import pytest
import sympy
import torch

import algorithms
from algorithms.adam import Adam
from algorithms.galore_adamw import GaLoreAdamW
from synthetic.llama import Llama, LlamaConfig
from verify.memory import formulas as F
from verify.memory.measure import compare_state
from verify.memory.models import table_groups
from verify.memory.walker import walk_state

from ..optim_db import OPTIM_DB
from ..test_contract import SHAPES, loss_fn, make_params, make_targets

NAMES = sorted(algorithms.REGISTRY)
STEPS = 3


def run_steps(opt, params, targets, steps=STEPS):
    """Steps through a closure (MARS-exact evaluates it twice per step; the others call it once)."""

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(params, targets)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)


def build(name, params, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # subset-size fallback warnings on tiny shapes are expected
        return algorithms.make(name, params, **kwargs)


# ----------------------------------------------------------------------------- coverage
@pytest.mark.parametrize("name", NAMES)
def test_every_registered_algorithm_has_a_formula(name):
    assert F.has_formula(name), f"{name} has no memory formula in verify/memory/formulas.py"
    assert name in OPTIM_DB, f"{name} has no OptimizerInfo, so its formula cannot be exercised"


# ----------------------------------------------------------------------------- exact equality
@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("name", NAMES)
def test_measured_state_equals_formula_on_contract_shapes(name, shape_name):
    assert F.has_formula(name) and name in OPTIM_DB
    for inp in OPTIM_DB[name].inputs:
        params = make_params([SHAPES[shape_name]])
        opt = build(name, params, inp.kwargs)
        run_steps(opt, params, make_targets(params))
        cmp = compare_state(opt, name)
        assert cmp.params_checked == 1
        assert cmp.exact, f"[{inp.desc}] " + cmp.summary()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_measured_state_equals_formula_with_all_shapes_in_one_optimizer(name, dtype):
    """Every shape in one group (group-level coupling such as AdaGrad-Norm's shared accumulator), in both
    dtypes (bytes follow the parameter dtype; counters and indices stay int64)."""
    for inp in OPTIM_DB[name].inputs:
        params = make_params(list(SHAPES.values()), dtype=dtype)
        opt = build(name, params, inp.kwargs)
        run_steps(opt, params, make_targets(params), steps=4)
        cmp = compare_state(opt, name)
        assert cmp.params_checked == len(SHAPES)
        assert cmp.exact, f"[{inp.desc}, {dtype}] " + cmp.summary()


@pytest.mark.parametrize("name", [n for n in NAMES if algorithms.REGISTRY[n].supports_batch_dims])
def test_measured_state_equals_formula_with_batch_dims(name):
    shapes = [(3, 12, 5), (3, 5, 12), (3, 7), (3,)]
    for inp in OPTIM_DB[name].inputs:
        params = make_params(shapes)
        opt = build(name, params, {**inp.kwargs, "batch_dims": 1})
        run_steps(opt, params, make_targets(params))
        cmp = compare_state(opt, name)
        assert cmp.exact, f"[{inp.desc}] " + cmp.summary()


TINY = LlamaConfig(vocab=64, dim=32, layers=2, heads=4, ffn=88, max_seq=16)


@pytest.mark.parametrize("name", NAMES)
def test_measured_state_equals_formula_on_a_tiny_llama(name):
    """A real model, routed the way each paper did (verify.memory.models.table_groups: the routing declared on each class)."""
    torch.manual_seed(0)
    model = Llama(TINY)
    opt = build(name, table_groups(name, model, 4), {"lr": 1e-3})
    tokens = torch.randint(0, TINY.vocab, (2, TINY.max_seq + 1), generator=torch.Generator().manual_seed(1))
    def closure():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(tokens)
        loss.backward()
        return loss

    for _ in range(2):
        opt.step(closure)
    cmp = compare_state(opt, name)
    assert cmp.params_checked == len(list(model.parameters()))
    assert cmp.exact, cmp.summary()
    assert cmp.measured_bytes == sum(ps.nbytes for ps in walk_state(opt).params)


# ----------------------------------------------------------------------------- planted bugs
class AdamWithExtraBuffer(Adam):
    """Planted bug: one extra full-size buffer per parameter (not registered)."""

    def _init_state(self, p, group, state):
        super()._init_state(p, group, state)
        state["scratch"] = torch.zeros_like(p)


class AdamWithFloat32Moments(Adam):
    """Planted bug: the second moment silently kept in float32 for a float64 parameter."""

    def _init_state(self, p, group, state):
        super()._init_state(p, group, state)
        state["exp_avg_sq"] = state["exp_avg_sq"].float()

    def _update_param(self, p, grad, state, group):
        state["exp_avg_sq"] = state["exp_avg_sq"].double()
        super()._update_param(p, grad, state, group)
        state["exp_avg_sq"] = state["exp_avg_sq"].float()


class GaLoreKeepingFullSVD(GaLoreAdamW):
    """Planted bug: the basis is a slice of the full SVD factor, which stays alive behind the view."""

    def _refresh(self, grad, state, group, side, rank):
        U, _, Vh = torch.linalg.svd(grad, full_matrices=True)
        state["basis"] = U[..., :rank] if side == "left" else Vh.mT[..., :rank]


class AdamSharingMoments(Adam):
    """Planted bug: both moments alias one buffer."""

    def _init_state(self, p, group, state):
        super()._init_state(p, group, state)
        state["exp_avg_sq"] = state["exp_avg"]


@pytest.mark.parametrize("cls,algorithm,what", [
    (AdamWithExtraBuffer, "adam", "not in the formula"),
    (AdamWithFloat32Moments, "adam", "dtype"),
    (GaLoreKeepingFullSVD, "galore_adamw", "storage bytes"),
    (AdamSharingMoments, "adam", "shares its storage"),
])
def test_planted_bug_breaks_equality(cls, algorithm, what):
    params = make_params([(12, 5), (7,)])
    kwargs = {"lr": 1e-2, "rank": 2} if algorithm == "galore_adamw" else {"lr": 1e-2}
    kwargs["nonfinite"] = "ignore"  # the aliased-moments bug diverges to NaN; the state layout is what is checked
    opt = cls(params, **kwargs)
    run_steps(opt, params, make_targets(params))
    cmp = compare_state(opt, algorithm)
    assert not cmp.exact
    assert any(what in m.what for m in cmp.mismatches), cmp.summary()
    # the unmodified class passes on the same problem
    base = cls.__mro__[1](make_params([(12, 5), (7,)]), **kwargs)
    fresh = base.param_groups[0]["params"]
    run_steps(base, fresh, make_targets(fresh))
    assert compare_state(base, algorithm).exact


def test_missing_state_key_is_reported():
    class AdamWithoutSecondMoment(Adam):
        def _init_state(self, p, group, state):
            state["exp_avg"] = torch.zeros_like(p)

        def _update_param(self, p, grad, state, group):
            state["step"] += 1
            p.add_(grad, alpha=-group["lr"])

    params = make_params([(4, 3)])
    opt = AdamWithoutSecondMoment(params, lr=1e-2)
    run_steps(opt, params, make_targets(params))
    cmp = compare_state(opt, "adam")
    assert any("missing" in m.what for m in cmp.mismatches)


# ----------------------------------------------------------------------------- formulas themselves
def test_formulas_match_memory_md_section_1():
    """The closed forms of docs/memory.md §1 for an m×n matrix (m < n, left projection)."""
    mm, nn, rr = 32, 48, 8
    galore = F.param_memory("galore_adamw", (mm, nn), {"rank": rr})
    assert galore.elements(F.PAPER_KINDS | F.PROJECTOR_KINDS) == rr * mm + 2 * rr * nn
    fira = F.param_memory("fira_adamw", (mm, nn), {"rank": rr})
    assert fira.elements(F.PAPER_KINDS | F.PROJECTOR_KINDS) == rr * mm + 2 * rr * nn + 1
    ld = F.param_memory("ldadam", (mm, nn), {"rank": rr})
    assert ld.elements(F.PAPER_KINDS | F.PROJECTOR_KINDS) == rr * (mm + 2 * nn)
    assert ld.elements(frozenset({"error_feedback"})) == mm * nn
    snsm = F.param_memory("adam_sn_sm", (nn, mm), {"rank": rr})  # m ≥ n: momentum m×r, basis n×r, v m×1
    assert snsm.elements(F.PAPER_KINDS) == rr * nn + nn and snsm.elements(F.PROJECTOR_KINDS) == rr * mm
    sn = F.param_memory("adam_sn", (mm, nn), {"subset_size": "heuristics"})
    assert sn.elements(F.PAPER_KINDS) == mm * nn + nn
    sm_idx = F.param_memory("subspace_momentum", (nn, mm), {"rank": rr, "proj_type": "topk"})
    assert sm_idx.elements(F.PAPER_KINDS) == rr * mm and sm_idx.elements(F.PROJECTOR_KINDS) == rr
    arg = F.param_memory("adarankgrad", (mm, nn), {"max_rank": 16}, runtime={"rank": 5, "refreshes": 3})
    assert arg.elements(F.PAPER_KINDS | F.PROJECTOR_KINDS) == 5 * (mm + 2 * nn)
    assert arg.count(arg.by_key()["refresh_log"]) == 6
    adam = F.param_memory("adam", (mm, nn))
    assert adam.elements(F.PAPER_KINDS) == 2 * mm * nn


def test_formulas_are_sympy_expressions_in_the_documented_symbols():
    fm = F.param_memory("galore_adamw", (10, 6), {"rank": 3})
    exprs = {t.key: t.elements for t in fm.terms}
    assert sympy.simplify(exprs["basis"] - F.B * F.n * F.r) == 0  # right basis n × r for m > n
    assert sympy.simplify(exprs["exp_avg"] - F.B * F.r * F.m) == 0
    assert fm.values[F.r] == 3 and fm.values[F.m] == 10 and fm.values[F.n] == 6
    assert fm.nbytes(2) == 2 * (6 * 3 + 2 * 10 * 3) + 8  # bf16 states + int64 step


def test_subset_count_rules():
    assert F.subset_count((12, 5), "heuristics") == (5, 12)
    assert F.subset_count((5, 12), "heuristics") == (5, 12)
    assert F.subset_count((3, 6, 4), "heuristics") == (3, 24)  # shape[0] × prod(rest)
    assert F.subset_count((7,), "heuristics") == (1, 7)
    assert F.subset_count((12, 5), 4) == (4, 15)
    assert F.subset_count((7,), 4) == (1, 7)  # prime numel: k = 1 (the fallback)
    assert F.subset_count((64,), -2) == (4, 16)  # ⌊√64/2⌋ = 4
    assert F.subset_count((0, 5), "heuristics") == (1, 0)
    assert F.subset_count((6,), "norm") == (6, 1)


def test_unknown_algorithm_and_bad_device():
    with pytest.raises(KeyError, match="no memory formula"):
        F.param_memory("nope", (2, 2))
    with pytest.raises(ValueError, match="device"):
        F.param_memory("adam", (2, 2), device="tpu")
    with pytest.raises(ValueError, match="kind"):
        F.Term("x", F.p, "param", "weird")


def test_rng_state_size_matches_torch_generator():
    assert torch.Generator().get_state().numel() == F.RNG_STATE_BYTES["cpu"]
