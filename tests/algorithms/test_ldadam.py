"""algorithms/ldadam.py: exact reductions, the code's rule transcribed from the spec, the error-feedback
buffer in the optimizer state, sides, signs, variants, batching."""

from __future__ import annotations


import pytest
import torch
import torch.nn as nn

import algorithms
from algorithms.grouping import paper_param_groups
from algorithms import ldadam as L
from algorithms.projection import project_back

from verify.methods.ldadam_adarankgrad import ldadam_transcription as spec_ldadam_left

from ..helpers import max_rel_err

F64 = torch.float64
BETAS = (0.908, 0.99)


def stream(shape, steps, seed=1, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype) for _ in range(steps)]


def start(shape, seed=0, dtype=F64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def feed(opt, params, grads_per_step):
    """Open loop: ``p.grad`` holds exactly this step's gradient (set_to_none between steps)."""
    for grads in grads_per_step:
        opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()


# ----------------------------------------------------------------------------- exact reductions
@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("error_feedback", [True, False], ids=["ef", "no_ef"])
@pytest.mark.parametrize("shape", [(1, 9), (9, 1)], ids=["1xn", "nx1"])
def test_rank_one_vector_matrix_equals_torch_adamw(shape, error_feedback, variant):
    """P = ±1, so C∘C = 1 and the variance round trip is the identity: LDAdam is AdamW (spec §A6)."""
    x = start(shape)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = algorithms.make("ldadam", [a], lr=0.05, betas=BETAS, weight_decay=0.1, rank=1,
                           error_feedback=error_feedback, variant=variant)
    theirs = torch.optim.AdamW([b], lr=0.05, betas=BETAS, eps=1e-8, weight_decay=0.1, foreach=False)
    grads = stream(shape, 40)
    feed(ours, [a], [[g] for g in grads])
    feed(theirs, [b], [[g] for g in grads])
    assert max_rel_err(a, b) <= 1e-12


def test_dense_group_and_non_matrices_equal_torch_adamw():
    shapes = [(6, 4), (7,), (3, 2, 2)]
    xs = [start(s, seed=i) for i, s in enumerate(shapes)]
    ours_p = [x.clone().requires_grad_() for x in xs]
    ref_p = [x.clone().requires_grad_() for x in xs]
    ours = algorithms.make("ldadam", [{"params": ours_p[:1], "lowrank": False}, {"params": ours_p[1:]}],
                           lr=0.03, weight_decay=0.05, rank=2)
    theirs = torch.optim.AdamW(ref_p, lr=0.03, betas=BETAS, weight_decay=0.05, foreach=False)
    steps = list(zip(*[stream(s, 25, seed=10 + i) for i, s in enumerate(shapes)]))
    feed(ours, ours_p, steps)
    feed(theirs, ref_p, steps)
    for p, q in zip(ours_p, ref_p):
        assert max_rel_err(p, q) <= 1e-12


@pytest.mark.parametrize("proj_method", ["power_iteration", "svd"])
@pytest.mark.parametrize("shape,side", [((5, 8), "left"), ((8, 5), "right"), ((6, 6), "left")],
                         ids=["wide", "tall", "square"])
def test_full_rank_first_moment_equals_adams(shape, side, proj_method):
    """At r = min(m, n) the lifted momentum P_t M_t is Adam's first moment (the parameters differ by
    design: the second moment lives in the rotating basis; only the first moment is compared)."""
    x = start(shape)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = algorithms.make("ldadam", [a], lr=0.05, rank=min(shape), proj_method=proj_method)
    adam = torch.optim.AdamW([b], lr=0.05, betas=BETAS, foreach=False)
    for g in stream(shape, 30):
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        adam.step()
        st = ours.state[a]
        lifted = project_back(st["exp_avg"], st["basis"], side)
        assert max_rel_err(lifted, adam.state[b]["exp_avg"]) <= 1e-12
        assert float(st["error_buffer"].abs().max()) <= 1e-12 * float(g.abs().max()) * 10


def test_full_rank_first_moment_official_variant_within_float32_decomposition_error():
    """The official QR runs in float32, so P is orthonormal only to ~1e-7: the bound is float32's, not
    float64's (spec §A6 measured 2.6e-7)."""
    x = start((6, 9))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = algorithms.make("ldadam", [a], lr=0.05, rank=6, variant="official")
    adam = torch.optim.AdamW([b], lr=0.05, betas=BETAS, foreach=False)
    worst = 0.0
    for g in stream((6, 9), 30):
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        adam.step()
        st = ours.state[a]
        worst = max(worst, max_rel_err(project_back(st["exp_avg"], st["basis"], "left"), adam.state[b]["exp_avg"]))
    assert 1e-12 < worst <= 1e-5  # float32 round-off is visible (so fp32 really is used) and bounded


# ----------------------------------------------------------------------------- the rule, from the spec
@pytest.mark.parametrize("proj_method", ["power_iteration", "svd"])
@pytest.mark.parametrize("error_feedback", [True, False], ids=["ef", "no_ef"])
@pytest.mark.parametrize("shape", [(4, 9), (9, 4), (6, 6)], ids=["wide", "tall", "square"])
def test_matches_the_spec_rule(shape, error_feedback, proj_method):
    """Ours (paper variant, float64) against the spec's per-step rule (docs/methods.md §3.1 written out in
    verify.methods.ldadam_adarankgrad.ldadam_transcription) at r = 3 over 25 steps. A tall
    matrix projects right; it is checked through the spec's identity left(Wᵀ)ᵀ = right(W)."""
    hyper = dict(lr=0.03, betas=BETAS, eps=1e-8, wd=0.1, rank=3, rho=0.908)
    x = start(shape)
    grads = stream(shape, 25)
    p = x.clone().requires_grad_()
    opt = algorithms.make("ldadam", [p], lr=0.03, betas=BETAS, weight_decay=0.1, rank=3, rho=0.908,
                          error_feedback=error_feedback, proj_method=proj_method)
    feed(opt, [p], [[g] for g in grads])
    transpose = shape[0] > shape[1]
    if transpose:
        ref = spec_ldadam_left(x.T, [g.T for g in grads], error_feedback=error_feedback, proj_method=proj_method, **hyper).T
    else:
        ref = spec_ldadam_left(x, grads, error_feedback=error_feedback, proj_method=proj_method, **hyper)
    assert max_rel_err(p, ref) <= 1e-12


def test_step_one_is_a_signed_step_in_the_svd_basis():
    """t = 1 with ε = 0: M̂ = Pᵀg, V̂ = (Pᵀg)², so W₁ = W₀ − η P sign(Pᵀg) (the parameters leave Adam's
    sign(g) at once)."""
    x, g = start((5, 7)), start((5, 7), seed=4)
    p = x.clone().requires_grad_()
    opt = algorithms.make("ldadam", [p], lr=0.1, rank=2, eps=0.0)
    p.grad = g.clone()
    opt.step()
    P = torch.linalg.svd(g)[0][:, :2]
    assert max_rel_err(p, x - 0.1 * P @ torch.sign(P.T @ g)) <= 1e-12


# ----------------------------------------------------------------------------- error feedback in the state
def test_error_buffer_follows_the_generalized_error_feedback_formula():
    """EF on ≡ EF off fed a_t = g_t + e_t, where the test computes e_{t+1} = a_t − P_tP_tᵀa_t +
    β1/(1−β1)(I − P_tP_tᵀ)P_{t−1}M_{t−1} from the EF-off run's own states."""
    shape, b1 = (5, 8), BETAS[0]
    x = start(shape)
    on, off = x.clone().requires_grad_(), x.clone().requires_grad_()
    kw = dict(lr=0.03, rank=2)
    opt_on = algorithms.make("ldadam", [on], error_feedback=True, **kw)
    opt_off = algorithms.make("ldadam", [off], error_feedback=False, **kw)
    e = torch.zeros(shape, dtype=F64)
    for t, g in enumerate(stream(shape, 20), start=1):
        on.grad = g.clone()
        opt_on.step()
        a = g + e
        lifted_prev = None
        if t > 1:
            st = opt_off.state[off]
            lifted_prev = st["basis"] @ st["exp_avg"]
        off.grad = a.clone()
        opt_off.step()
        P = opt_off.state[off]["basis"]
        e = a - P @ (P.T @ a)
        if lifted_prev is not None:
            e = e + b1 / (1 - b1) * (lifted_prev - P @ (P.T @ lifted_prev))
        assert max_rel_err(opt_on.state[on]["error_buffer"], e) <= 1e-10
    assert max_rel_err(on, off) <= 1e-12


def _tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5, bias=False), nn.Tanh(), nn.Linear(5, 3)).double()


def _train(zero_grad_style, steps=8, clip=None):
    model = _tiny_model()
    opt = algorithms.make("ldadam", list(model.parameters()), lr=0.05, rank=2)
    g = torch.Generator().manual_seed(3)
    data = [(torch.randn(4, 6, generator=g, dtype=F64), torch.randn(4, 3, generator=g, dtype=F64)) for _ in range(steps)]
    for xb, yb in data:
        if zero_grad_style == "model":
            model.zero_grad()
        else:
            opt.zero_grad(set_to_none=zero_grad_style == "none")
        ((model(xb) - yb) ** 2).sum().backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        before = [p.grad.clone() for p in model.parameters()]
        opt.step()
        for p, gr in zip(model.parameters(), before):
            assert torch.equal(p.grad, gr), "step() must not write the error buffer into p.grad"
    return model, opt


def test_error_buffer_survives_every_way_of_clearing_gradients():
    """The buffer is state, not p.grad: zero_grad(set_to_none=True/False) and model.zero_grad() give
    bit-identical trajectories (the authors' code would lose e_t under the first and the last)."""
    runs = [_train(style) for style in ("none", "zeros", "model")]
    ref = [p.detach() for p in runs[0][0].parameters()]
    for model, _ in runs[1:]:
        for p, q in zip(model.parameters(), ref):
            assert torch.equal(p, q)
    opt = runs[0][1]
    low = next(iter(runs[0][0].parameters()))
    assert float(opt.state[low]["error_buffer"].norm()) > 1e-3, "at rank 2 < 5 the buffer must be non-trivial"


def test_gradient_clipping_acts_on_the_gradient_not_on_the_buffer():
    """Clipping scales g_t only: the buffer enters after clipping (the code clips a_t = g_t + e_t)."""
    model, opt = _train("none", clip=0.5)
    low = next(iter(model.parameters()))
    buf = opt.state[low]["error_buffer"].clone()
    low.grad = torch.ones_like(low)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
    assert torch.equal(opt.state[low]["error_buffer"], buf)


def test_error_feedback_changes_the_trajectory_below_full_rank():
    x = start((5, 8))
    outs = []
    for ef in (True, False):
        p = x.clone().requires_grad_()
        feed(algorithms.make("ldadam", [p], lr=0.05, rank=2, error_feedback=ef), [p], [[g] for g in stream((5, 8), 15)])
        outs.append(p.detach())
    assert max_rel_err(outs[0], outs[1]) > 1e-3


# ----------------------------------------------------------------------------- sides, signs, variants
def test_left_on_w_equals_right_on_w_transposed():
    x = start((5, 8))
    grads = stream((5, 8), 20)
    left, right = x.clone().requires_grad_(), x.T.clone().requires_grad_()
    feed(algorithms.make("ldadam", [left], lr=0.03, rank=3, proj_side="left"), [left], [[g] for g in grads])
    feed(algorithms.make("ldadam", [right], lr=0.03, rank=3, proj_side="right"), [right], [[g.T] for g in grads])
    assert max_rel_err(left, right.T) <= 1e-12


def test_square_matrix_sides_per_variant():
    assert L.ldadam_side(4, 4, "std", "left", "paper") == "left"
    assert L.ldadam_side(4, 4, "reverse_std", "left", "paper") == "right"
    assert L.ldadam_side(4, 4, "reverse_std", "left", "official") == "left"  # the code's m >= n test
    assert L.ldadam_side(4, 6, "reverse_std", "left", "official") == "right"
    assert L.ldadam_side(6, 4, "std", "left", "official") == "right"


def _run_with_state_edit(edit, steps=12, at=6):
    x = start((5, 9))
    p = x.clone().requires_grad_()
    opt = algorithms.make("ldadam", [p], lr=0.03, rank=3)
    for t, g in enumerate(stream((5, 9), steps), start=1):
        p.grad = g.clone()
        opt.step()
        if t == at:
            edit(opt.state[p])
    return p.detach()


def test_flipping_basis_signs_consistently_changes_nothing():
    """Flip columns of P_t together with the matching rows of M (the same lifted momentum): C∘C is
    sign-free, so the trajectory is unchanged (spec §A6)."""
    signs = torch.tensor([-1.0, 1.0, -1.0], dtype=F64)

    def flip(st):
        st["basis"] = st["basis"] * signs
        st["exp_avg"] = st["exp_avg"] * signs[:, None]

    assert max_rel_err(_run_with_state_edit(flip), _run_with_state_edit(lambda st: None)) <= 1e-12


def test_rotating_the_basis_within_its_span_changes_the_trajectory():
    """The diagonal second moment is not rotation invariant (spec §A6): a consistent in-span rotation
    (P → PO, M → OᵀM) changes later steps."""
    c, s = 0.6, 0.8
    O = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=F64)

    def rotate(st):
        st["basis"] = st["basis"] @ O
        st["exp_avg"] = O.T @ st["exp_avg"]

    assert max_rel_err(_run_with_state_edit(rotate), _run_with_state_edit(lambda st: None)) > 1e-6


def test_official_variant_decomposes_in_float32():
    x = start((6, 9))
    grads = [[g] for g in stream((6, 9), 10)]
    ps = {}
    for variant in ("paper", "official"):
        p = x.clone().requires_grad_()
        feed(algorithms.make("ldadam", [p], lr=0.03, rank=3, variant=variant), [p], grads)
        ps[variant] = p.detach()
        assert p.dtype == F64
    err = max_rel_err(ps["official"], ps["paper"])
    assert 1e-12 < err <= 1e-5, err


def test_svd_lowrank_with_a_full_sketch_equals_svd():
    """With rank + 2 ≥ min(m, n) the sketch spans the whole range, so it returns the exact singular
    subspace; LDAdam is sign invariant, hence identical to proj_method='svd' up to round-off."""
    x = start((4, 9))
    grads = [[g] for g in stream((4, 9), 15)]
    outs = []
    for method in ("svd", "svd_lowrank"):
        p = x.clone().requires_grad_()
        opt = algorithms.make("ldadam", [p], lr=0.03, rank=2, proj_method=method)
        feed(opt, [p], grads)
        outs.append(p.detach())
        assert ("rng_state" in opt.state[p]) == (method == "svd_lowrank")
    assert max_rel_err(outs[1], outs[0]) <= 1e-10


def test_svd_lowrank_does_not_touch_the_global_rng():
    p = start((6, 9)).requires_grad_()
    opt = algorithms.make("ldadam", [p], lr=0.03, rank=2, proj_method="svd_lowrank")
    before = torch.random.get_rng_state()
    feed(opt, [p], [[g] for g in stream((6, 9), 3)])
    assert torch.equal(torch.random.get_rng_state(), before)


# ----------------------------------------------------------------------------- validation, batching, misc
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_rank_above_the_smaller_dimension_raises_at_construction(variant):
    p = torch.zeros(4, 10, requires_grad=True)
    with pytest.raises(ValueError, match=r"rank must be <= the projected dimension 4.*4x10"):
        algorithms.make("ldadam", [p], rank=5, variant=variant)
    with pytest.raises(ValueError, match="rank"):  # right projection of a wide matrix: still at most 4 vectors
        algorithms.make("ldadam", [p], rank=5, proj_side="right", variant=variant)


@pytest.mark.parametrize("proj_method", ["power_iteration", "svd"])
def test_batch_dims_equal_separate_problems(proj_method):
    S, shape = 3, (5, 7)
    xs = torch.randn((S, *shape), generator=torch.Generator().manual_seed(0), dtype=F64)
    grads = stream((S, *shape), 12)
    batched = xs.clone().requires_grad_()
    feed(algorithms.make("ldadam", [batched], lr=0.03, rank=2, proj_method=proj_method, batch_dims=1),
         [batched], [[g] for g in grads])
    for s in range(S):
        single = xs[s].clone().requires_grad_()
        feed(algorithms.make("ldadam", [single], lr=0.03, rank=2, proj_method=proj_method),
             [single], [[g[s]] for g in grads])
        assert max_rel_err(batched[s], single) <= 1e-12


def test_step_counter_and_error_buffer_are_in_the_state_dict():
    p = start((5, 7)).requires_grad_()
    opt = algorithms.make("ldadam", [p], lr=0.03, rank=2)
    feed(opt, [p], [[g] for g in stream((5, 7), 4)])
    st = opt.state_dict()["state"][0]
    assert int(st["step"]) == 4 and st["step"].dtype == torch.int64
    assert st["error_buffer"].shape == (5, 7) and st["basis"].shape == (5, 2) and st["exp_avg"].shape == (2, 7)


def test_zero_gradients_stay_finite():
    p = start((5, 7)).requires_grad_()
    opt = algorithms.make("ldadam", [p], lr=0.03, rank=2)
    feed(opt, [p], [[torch.zeros(5, 7, dtype=F64)]] * 3)
    assert torch.isfinite(p).all()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.Linear(8, 8, bias=False)
        self.mlp = nn.Linear(8, 12)
        self.norm = nn.LayerNorm(8)


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.block = Block()
        self.lm_head = nn.Linear(8, 10, bias=False)


def test_param_groups_helper_uses_the_papers_split():
    model = TinyLM().double()
    groups = paper_param_groups("ldadam", model, rank=4)
    low, dense = groups
    assert low["param_names"] == ["block.attn.weight", "block.mlp.weight"] and low["rank"] == 4
    assert set(dense["param_names"]) == {"embed.weight", "block.mlp.bias", "block.norm.weight", "block.norm.bias", "lm_head.weight"}
    assert dense["lowrank"] is False
    opt = algorithms.make("ldadam", groups, lr=1e-2)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    assert opt.state[model.block.attn.weight]["basis"].shape == (8, 4)
    assert "basis" not in opt.state[model.lm_head.weight]


# ----------------------------------------------------------------------------- third-party cross-check
def authors_ldadamw():
    """``LDAdamW`` from a checkout under ``.authors/`` (verify/oracle/authors.py) or an installed ``ldadamw_torch``."""
    from verify.oracle.authors import imported, locate

    if locate("ldadam") is not None:
        with imported("ldadam") as modules:
            return modules["ldadamw_torch"].LDAdamW
    return pytest.importorskip("ldadamw_torch", reason="clone IST-DASLab/LDAdam into .authors/LDAdam").LDAdamW


@pytest.mark.crosscheck
@pytest.mark.parametrize("dtype,rtol", [(F64, 1e-12), (torch.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("proj_method", ["power_iteration", "svd"])
@pytest.mark.parametrize("error_feedback", [True, False], ids=["ef", "no_ef"])
@pytest.mark.parametrize("proj_side", ["std", "reverse_std"])
@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (8, 8)], ids=["wide", "tall", "square"])
def test_official_variant_matches_the_authors_code(shape, proj_side, error_feedback, proj_method, dtype, rtol):
    """Against ``ldadamw_torch.LDAdamW`` (IST-DASLab/LDAdam @ f3c5daf; not on PyPI: clone it into
    ``.authors/LDAdam``, verify/oracle/authors.py), 50 random-gradient steps at r = 3. Gradients are fed the way backward does (added into
    ``p.grad``, which the authors' ``zero_grad`` keeps as the error buffer). Both run the same float32
    QR/SVD, so float64 agrees to round-off; float32 inherits the SVD's float32 sensitivity."""
    LDAdamW = authors_ldadamw()
    x = start(shape).to(dtype)
    theirs_p, ours_p = x.clone().requires_grad_(), x.clone().requires_grad_()
    theirs = LDAdamW([{"params": [theirs_p], "enable_lowrank": True}], lr=0.01, rank=3,
                                   weight_decay=0.01, error_feedback=error_feedback, proj_method=proj_method,
                                   proj_type=proj_side)
    ours = algorithms.make("ldadam", [ours_p], lr=0.01, rank=3, weight_decay=0.01, error_feedback=error_feedback,
                           proj_method=proj_method, proj_side=proj_side, variant="official")
    for g in stream(shape, 50):
        g = g.to(dtype)
        if theirs_p.grad is None:
            theirs_p.grad = g.clone()
        else:
            theirs_p.grad.add_(g)
        theirs.step()
        theirs.zero_grad()
        ours_p.grad = g.clone()
        ours.step()
        assert max_rel_err(ours_p, theirs_p) <= rtol


def test_state_elements_match_the_memory_formula():
    """docs/memory.md §1: r·(min + 2·max) persistent elements per projected matrix (P, M, V), plus, here, the m·n
    error buffer that the authors' code keeps in p.grad; 2·numel for a dense parameter."""
    shapes, r = [(6, 10), (10, 6), (7,)], 3
    ps = [start(s).requires_grad_() for s in shapes]
    opt = algorithms.make("ldadam", ps, lr=0.01, rank=r)
    feed(opt, ps, [[torch.ones(s, dtype=F64) for s in shapes]])
    for p in ps:
        st = opt.state[p]
        counts = {k: v.numel() for k, v in st.items() if k != "step"}
        if p.dim() == 2:
            lo, hi = min(p.shape), max(p.shape)
            assert counts["basis"] + counts["exp_avg"] + counts["exp_avg_sq"] == r * (lo + 2 * hi)
            assert counts["error_buffer"] == p.numel() and len(counts) == 4
        else:
            assert sum(counts.values()) == 2 * p.numel()
