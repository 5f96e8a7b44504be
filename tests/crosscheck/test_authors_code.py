"""``variant="official"`` against the authors' own repositories (verify/oracle/authors.py), when a checkout is there.

Clone them into ``.authors/`` (or ``$OPTVERIFY_AUTHORS_CODE``); each test skips, naming the clone
command, when its checkout is missing. Protocol: open-loop Gaussian gradient streams fed the way
``backward`` after ``zero_grad(set_to_none=True)`` does (a new ``p.grad`` tensor each step), one run
holding a wide and a tall matrix plus a vector, weight decay off and on; the parameters must agree at
every step to rel. err. ≤ 1e-12 in float64 and ≤ 1e-5 in float32 (the authors' code runs in the same
dtype as ours, so float32 differences are round-off of different but equivalent operation orders).

* MARS (AGI-Arena/MARS ``mars.py``): ``mars-adamw``, ``mars-lion`` and ``mars-shampoo`` (its
  Newton–Schulz iteration in bfloat16, run eagerly here: the code wraps it in ``torch.compile``, whose
  fused kernels keep some intermediates in float32, so the code as shipped rounds at fewer points than
  its own eager reading — on CPU we measured 2e-5 relative parameter difference after one step at
  lr = 3e-3, i.e. about 1 % of the update, bfloat16 round-off; ``variant="official"`` follows the eager
  reading) against
  ``mars_adamw`` / ``mars_lion`` / ``mars_shampoo``, with the code's defaults for 1-D parameters
  (AdamW fallback with ``lr_1d``, ``betas_1d``, ``weight_decay_1d``). Also shown: with gradients written
  *in place* (``zero_grad(set_to_none=False)``, or any loop that reuses the ``.grad`` buffer), the code's
  ``state["last_grad"] = grad`` aliases the current gradient, so ``c_t = g_t`` and MARS silently becomes
  its γ = 0 special case; the test asserts that equality (ours keeps a copy, so the official variant
  models the intended algorithm, not the aliasing).
* SN-SM (timmytonga/sn-sm ``GenericOptim``, configured as its ``get_optimizer.py`` does: the
  ``nn.Linear``-like matrices in a group with ``subset_size`` and/or ``rank``/``proj_type="svd"``, the
  rest plain): ``adam_sn`` (``adamw_sn``), ``adam_sn_sm`` (``adamw_sn_sm``), ``subspace_momentum``
  (``sgd_sm``) and ``rmsprop_sn`` (``rmsprop_sn``), with a refresh every 10 steps. The code computes its SVD in
  float32 whatever the parameter dtype; ours (``variant="official"``) does the same, hence the float64
  agreement.
* LDAdam (IST-DASLab/LDAdam ``ldadamw_torch``): tests/algorithms/test_ldadam.py
  (``test_official_variant_matches_the_authors_code``, importable when the checkout is on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import io

import pytest
import torch

import algorithms
from verify.oracle.authors import AUTHORS_CODE, checkout_root, imported, locate

from tests.helpers import grad_stream

pytestmark = pytest.mark.crosscheck

F64 = torch.float64
SHAPES = [(6, 10), (10, 6), (7,)]
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}
DTYPES = pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
DECAY = pytest.mark.parametrize("weight_decay", [0.0, 0.1], ids=["wd0", "wd0.1"])


def require(key):
    if locate(key) is None:
        entry = AUTHORS_CODE[key]
        pytest.skip(f"no checkout of {entry.repository}: git clone https://github.com/{entry.repository} "
                    f"{checkout_root() / entry.directory}")


def leaves(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    start = [torch.randn(s, generator=gen, dtype=F64).to(dtype) for s in SHAPES]
    return [x.clone().requires_grad_() for x in start], [x.clone().requires_grad_() for x in start]


def gradient_stream(dtype, steps, seed=1, scale=1.0):
    """Float64 Gaussian gradients (tests/helpers.grad_stream), scaled, then rounded to ``dtype``."""
    for grads in grad_stream(SHAPES, steps, torch.Generator().manual_seed(seed)):
        yield [(g * scale).to(dtype) for g in grads]


def feed(params, grads, in_place=False):
    for p, g in zip(params, grads):
        if in_place and p.grad is not None:
            p.grad.copy_(g)
        else:
            p.grad = g.clone()


def rel_err(a, b):
    return float((a.detach() - b.detach()).norm() / b.detach().norm().clamp_min(1e-300))


def assert_same_trajectory(theirs_params, theirs, ours_params, ours, dtype, steps=40, scale=1.0):
    moved = 0.0
    starts = [p.detach().clone() for p in ours_params]
    for t, grads in enumerate(gradient_stream(dtype, steps, scale=scale), start=1):
        feed(theirs_params, grads)
        feed(ours_params, grads)
        with contextlib.redirect_stdout(io.StringIO()):  # GenericOptim prints its subset sizes
            theirs.step()
        ours.step()
        for i, (a, b) in enumerate(zip(ours_params, theirs_params)):
            err = rel_err(a, b)
            assert err <= TOLERANCE[dtype], f"step {t}, parameter {i} {tuple(a.shape)}: rel. err. {err:.3g}"
    moved = max(rel_err(p, s) if s.norm() > 0 else 0.0 for p, s in zip(ours_params, starts))
    assert moved > 1e-3, "the parameters did not move: the comparison would be empty"


# ----------------------------------------------------------------------------- MARS
MARS_TYPES = {"mars_adamw": "mars-adamw", "mars_lion": "mars-lion", "mars_shampoo": "mars-shampoo"}


@contextlib.contextmanager
def authors_mars():
    require("mars")
    with imported("mars") as modules:
        module = modules["mars"]
        compiled = module.NewtonSchulz
        module.NewtonSchulz = getattr(compiled, "_torchdynamo_orig_callable", compiled)  # eager, same bf16 math
        try:
            yield module
        finally:
            module.NewtonSchulz = compiled


@pytest.fixture
def mars_module():
    """The authors' ``mars`` module, imported (and its Newton–Schulz run eagerly) for the whole test."""
    with authors_mars() as module:
        yield module


def mars_pair(module, name, theirs_params, ours_params, weight_decay, gamma=0.025):
    betas = (0.95, 0.99)
    theirs = module.MARS(theirs_params, lr=3e-3, betas=betas, weight_decay=weight_decay, gamma=gamma,
                         mars_type=MARS_TYPES[name])
    momentum = {"beta1": betas[0]} if name == "mars_lion" else {"betas": betas}
    ours = algorithms.make(name, ours_params, lr=3e-3, weight_decay=weight_decay, gamma=gamma, variant="official",
                           **momentum)
    return theirs, ours


@DTYPES
@DECAY
@pytest.mark.parametrize("scale", [1.0, 0.01], ids=["clipping", "no-clipping"])
@pytest.mark.parametrize("name", sorted(MARS_TYPES))
def test_mars_official_matches_the_authors_code(mars_module, name, scale, weight_decay, dtype):
    theirs_params, ours_params = leaves(dtype)
    theirs, ours = mars_pair(mars_module, name, theirs_params, ours_params, weight_decay)
    assert_same_trajectory(theirs_params, theirs, ours_params, ours, dtype, scale=scale)


def test_mars_authors_code_drops_the_correction_when_gradients_are_written_in_place(mars_module):
    """``state["last_grad"] = grad`` keeps a reference: a loop that reuses the .grad buffer makes
    c_t = g_t, i.e. γ = 0 (AdamW on per-tensor-clipped gradients), to round-off."""
    theirs_params, ours_params = leaves(F64)
    _, gamma0_params = leaves(F64)
    theirs, ours = mars_pair(mars_module, "mars_adamw", theirs_params, ours_params, 0.0)
    gamma0 = algorithms.make("mars_adamw", gamma0_params, lr=3e-3, betas=(0.95, 0.99), gamma=0.0, variant="official")
    for grads in gradient_stream(F64, 20):
        for params, opt in ((theirs_params, theirs), (ours_params, ours), (gamma0_params, gamma0)):
            feed(params, grads, in_place=True)
            opt.step()
    for a, b, c in zip(theirs_params, gamma0_params, ours_params):
        assert rel_err(a, b) <= 1e-12
    assert max(rel_err(a, c) for a, c in zip(theirs_params, ours_params)) > 1e-4  # ours keeps the correction


# ----------------------------------------------------------------------------- SN-SM
#: our name -> (GenericOptim momentum_type, second_moment_type, correct_bias, betas, our momentum kwargs)
SN_SM = {
    "adam_sn": ("ema", "sn", True, (0.9, 0.999), lambda b: {"betas": b}),
    "adam_sn_sm": ("sm", "sn", True, (0.9, 0.999), lambda b: {"betas": b}),
    "subspace_momentum": ("sm", "none", False, (0.9, 0.0), lambda b: {"momentum": b[0]}),
    "rmsprop_sn": ("none", "sn", False, (0.0, 0.999), lambda b: {"beta2": b[1]}),
}


def sn_sm_pair(name, theirs_params, ours_params, weight_decay, subset_size="heuristics", rank=3, gap=10):
    require("sn_sm")
    momentum, second, correct_bias, betas, our_momentum = SN_SM[name]
    options = {}
    if second == "sn":
        options["subset_size"] = subset_size
    if momentum == "sm":
        options.update(rank=rank, update_proj_gap=gap)

    def groups(params):
        return [{"params": [p for p in params if p.dim() != 2]},
                {"params": [p for p in params if p.dim() == 2], **options}]

    with imported("sn_sm") as modules, contextlib.redirect_stdout(io.StringIO()):
        theirs_groups = groups(theirs_params)
        if momentum == "sm":
            theirs_groups[1]["proj_type"] = "svd"
        theirs = modules["GenericOptim"].GenericOptim(theirs_groups, lr=1e-2, betas=betas, weight_decay=weight_decay,
                                                      correct_bias=correct_bias, momentum_type=momentum,
                                                      second_moment_type=second)
    ours = algorithms.make(name, groups(ours_params), lr=1e-2, weight_decay=weight_decay, variant="official",
                           **our_momentum(betas))
    return theirs, ours


@DTYPES
@DECAY
@pytest.mark.parametrize("name", sorted(SN_SM))
def test_sn_sm_official_matches_the_authors_code(name, weight_decay, dtype):
    theirs_params, ours_params = leaves(dtype)
    theirs, ours = sn_sm_pair(name, theirs_params, ours_params, weight_decay)
    assert_same_trajectory(theirs_params, theirs, ours_params, ours, dtype, steps=45)


@pytest.mark.parametrize("name", ["adam_sn", "rmsprop_sn"])
def test_sn_official_matches_the_authors_code_with_an_integer_subset_size(name):
    theirs_params, ours_params = leaves(F64)
    theirs, ours = sn_sm_pair(name, theirs_params, ours_params, 0.0, subset_size=5)
    assert_same_trajectory(theirs_params, theirs, ours_params, ours, F64)


def test_the_comparison_sees_a_paper_vs_code_difference():
    """Power: the same harness FAILs ``variant="paper"`` of adam_sn_sm against the authors' code
    (the paper resets the momentum at a refresh and places ε differently)."""
    require("sn_sm")
    theirs_params, ours_params = leaves(F64)
    theirs, _ = sn_sm_pair("adam_sn_sm", theirs_params, ours_params, 0.0)
    groups = [{"params": [p for p in ours_params if p.dim() != 2]},
              {"params": [p for p in ours_params if p.dim() == 2], "subset_size": "heuristics", "rank": 3,
               "update_proj_gap": 10}]
    paper = algorithms.make("adam_sn_sm", groups, lr=1e-2, betas=(0.9, 0.999), variant="paper")
    with pytest.raises(AssertionError, match="rel. err."):
        assert_same_trajectory(theirs_params, theirs, ours_params, paper, F64, steps=45)
