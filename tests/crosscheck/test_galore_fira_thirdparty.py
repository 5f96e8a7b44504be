"""``variant="official"`` of galore_adamw / fira_adamw against the third-party codes (optional extra).

Oracles: galore-torch 1.0 (``GaLoreAdamW``, the authors' package), fira 1.0.2 (``FiraAdamW``, the
authors' package) and pytorch-optimizer 4.1.0 (``GaLore``, ``Fira``; kozistr). Install with
``pip install --no-deps galore-torch==1.0 fira==1.0.2 pytorch-optimizer==4.1.0`` (``make crosscheck``).

Protocol (verify.oracle.compare): random Gaussian gradient streams (open loop, 60 steps), refreshes
every T ∈ {1, 7} steps, α ∈ {1, 0.25}, one run holding a tall, a wide and a square matrix plus a
1-D parameter (dense path); the third-party optimizer runs in float32, our reference in float64 on
the same (rounded) gradients; parameters and moments must agree to rel. err. ≤ 1e-5 at every step.
A second run with the third party in float64 must agree to 1e-10: both sides then do the same
float32 SVD of the same gradient and float64 arithmetic elsewhere.

**Stubs.** galore-torch and fira import ``transformers.utils.versions.require_version`` (a version
assertion, unused otherwise) and ``galore_torch/__init__`` imports bitsandbytes for its 8-bit class,
which we do not test. When those packages are absent, stub modules are put in ``sys.modules`` only
while the two packages are imported and removed afterwards (pytorch-optimizer probes
``find_spec("transformers")``, which a lingering stub would break). tensorly is not imported by
galore-torch 1.0.

Disagreements found (documented in the module docstrings and asserted below):

* pytorch-optimizer 4.1.0 refreshes one step early: its per-group counter is incremented before
  projecting, so the basis is recomputed at 1-based steps 1, T, 2T, … instead of 1, T+1, 2T+1, …
  (official codes, and Algorithm 2's "t mod T = 0" with t counted from 0). With its refresh index
  shifted back by one (a test-side patch), everything else agrees to round-off.
* fira 1.0.2 picks the column/row scaling axis from the shape of the low-rank step instead of the
  projection side: with ``proj_type="left"`` at ``rank = n`` on a tall matrix it raises a
  broadcasting error (ours, and pytorch-optimizer, scale per column of the left coordinates).
* galore-torch 1.0 / fira 1.0.2 ``reverse_std`` choose the back-projection side from the shape of the
  low-rank tensor, so a square projected gradient (``rank = m`` on a wide matrix) is lifted on the
  wrong side (a shape error) — the ms-swift PR #10146 report.
The paper side of each disagreement: Algorithm 2 / Algorithm 1 refresh at t mod T = 0 from t = 0
(the official schedule) and define one factor per column of the projected gradient (the side rule).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings

import pytest
import torch

import algorithms
from verify.oracle import compare

pytestmark = pytest.mark.crosscheck

SHAPES = ((24, 12), (12, 24), (16, 16), (17,))
STATE_MAP = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}
LR, WD, RANK = 1e-2, 0.1, 4


def _stub_modules() -> dict[str, types.ModuleType]:
    stubs: dict[str, types.ModuleType] = {}
    if importlib.util.find_spec("transformers") is None:
        versions = types.ModuleType("transformers.utils.versions")
        versions.require_version = lambda *args, **kwargs: None
        stubs.update({"transformers": types.ModuleType("transformers"),
                      "transformers.utils": types.ModuleType("transformers.utils"),
                      "transformers.utils.versions": versions})
    if importlib.util.find_spec("bitsandbytes") is None:
        optimizer = types.ModuleType("bitsandbytes.optim.optimizer")
        optimizer.Optimizer2State = object  # base class of the 8-bit GaLore we never instantiate
        stubs.update({"bitsandbytes": types.ModuleType("bitsandbytes"),
                      "bitsandbytes.optim": types.ModuleType("bitsandbytes.optim"),
                      "bitsandbytes.optim.optimizer": optimizer})
    return stubs


def _import_with_stubs(name: str):
    if importlib.util.find_spec(name) is None:  # not importorskip: that would import it without the stubs
        pytest.skip(f"{name} is not installed (optional crosscheck extra)")
    stubs = _stub_modules()
    added = [k for k in stubs if k not in sys.modules]
    sys.modules.update({k: stubs[k] for k in added})
    try:
        return importlib.import_module(name)
    finally:
        for k in added:
            sys.modules.pop(k, None)


@pytest.fixture(scope="module")
def pytorch_optimizer():
    po = pytest.importorskip("pytorch_optimizer")
    return po


@pytest.fixture(scope="module")
def galore_torch(pytorch_optimizer):  # import order: pytorch_optimizer before any stub
    return _import_with_stubs("galore_torch")


@pytest.fixture(scope="module")
def fira(pytorch_optimizer):
    return _import_with_stubs("fira")


def split_groups(params, **lowrank):
    """Matrices in the projected group (the third parties' ``rank`` key), everything else plain."""
    return [{"params": [p for p in params if p.dim() == 2], **lowrank},
            {"params": [p for p in params if p.dim() != 2]}]


def factories(name, galore_torch, fira, po, T, alpha, rank):
    if name == "galore-torch":
        def make(params, **_):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                return galore_torch.GaLoreAdamW(
                    split_groups(params, rank=rank, update_proj_gap=T, scale=alpha, proj_type="std"),
                    lr=LR, weight_decay=WD, no_deprecation_warning=True)
        return "galore_adamw", make
    if name == "fira":
        def make(params, **_):
            return fira.FiraAdamW(split_groups(params, rank=rank, update_proj_gap=T, alpha=alpha, proj_type="std"),
                                  lr=LR, weight_decay=WD, no_deprecation_warning=True)
        return "fira_adamw", make
    cls = {"po-galore": po.GaLore, "po-fira": po.Fira}[name]

    def make(params, **_):
        return cls(split_groups(params, rank=rank, update_proj_gap=T, scale=alpha, projection_type="std"),
                   lr=LR, weight_decay=WD, foreach=False)
    return ("galore_adamw" if name == "po-galore" else "fira_adamw"), make


@pytest.fixture
def po_official_schedule(monkeypatch, pytorch_optimizer):
    """Shift pytorch-optimizer's refresh index back by one step (its counter is incremented before
    projecting), isolating the rest of its math; the unshifted schedule is asserted separately."""
    from pytorch_optimizer.optimizer.utils import galore as po_galore

    project = po_galore.GaLoreProjector.project
    monkeypatch.setattr(po_galore.GaLoreProjector, "project",
                        lambda self, grad, num_steps, *a, **k: project(self, grad, num_steps - 1, *a, **k))


IMPLS = ["galore-torch", "fira", "po-galore", "po-fira"]


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.float64, 1e-10)], ids=["f32", "f64"])
@pytest.mark.parametrize("alpha", [1.0, 0.25])
@pytest.mark.parametrize("T,rank", [(1, RANK), (7, RANK), (7, 50)], ids=["T1", "T7", "T7-rank-truncated"])
@pytest.mark.parametrize("impl", IMPLS)
def test_official_variant_agrees_with_third_party(impl, T, rank, alpha, dtype, rtol, galore_torch, fira,
                                                  pytorch_optimizer, request):
    if impl.startswith("po-"):
        request.getfixturevalue("po_official_schedule")
    reference, make = factories(impl, galore_torch, fira, pytorch_optimizer, T, alpha, rank)
    state_map = dict(STATE_MAP)
    if impl == "fira" and not (rank >= min(min(s) for s in SHAPES if len(s) == 2) and alpha == 1.0):
        # ‖S_t‖ is compared unless every basis is full rank at α = 1: S = G − PPᵀG is then pure
        # round-off (float32 vs float64), and comparing two round-off noises says nothing
        state_map["residual_norm"] = "scaling_grad"
    report = compare(reference, make, reference_kwargs=dict(variant="official", lr=LR, weight_decay=WD, rank=rank,
                                                            update_proj_gap=T, scale=alpha),
                     shapes=SHAPES, steps=60, dtype=dtype, gradients="random", rtol=rtol, state_map=state_map,
                     candidate_name=impl)
    assert report.passed, report.summary()


def refresh_steps(opt, p, key, steps, shape, seed=0):
    """1-based steps at which the basis stored under ``key`` (a tensor, or a projector's ortho_matrix) changes."""
    g = torch.Generator().manual_seed(seed)
    changed, previous = [], None
    for t in range(1, steps + 1):
        p.grad = torch.randn(shape, generator=g)
        opt.step()
        state = opt.state[p]
        basis = state[key] if key == "basis" else state["projector"].ortho_matrix
        basis = basis.clone()
        if previous is None or not torch.equal(basis, previous):
            changed.append(t)
        previous = basis
    return changed


def test_pytorch_optimizer_refreshes_one_step_early(pytorch_optimizer, galore_torch):
    T, shape = 4, (12, 24)
    ours = torch.zeros(shape, requires_grad=True)
    opt = algorithms.make("galore_adamw", [ours], variant="official", rank=RANK, update_proj_gap=T)
    authors = torch.zeros(shape, requires_grad=True)
    ga = galore_torch.GaLoreAdamW([{"params": [authors], "rank": RANK, "update_proj_gap": T, "scale": 1.0,
                                    "proj_type": "std"}], no_deprecation_warning=True)
    third = torch.zeros(shape, requires_grad=True)
    po = pytorch_optimizer.GaLore([{"params": [third], "rank": RANK, "update_proj_gap": T, "scale": 1.0,
                                    "projection_type": "std"}], foreach=False)
    assert refresh_steps(opt, ours, "basis", 12, shape) == [1, 5, 9]
    assert refresh_steps(ga, authors, "projector", 12, shape) == [1, 5, 9]
    assert refresh_steps(po, third, "projector", 12, shape) == [1, 4, 8, 12]


def test_official_fira_scaling_axis_breaks_on_square_left_coordinates(fira):
    """fira 1.0.2 takes the axis from the shape of the low-rank step: rank = n with a left basis on a
    tall matrix gives a square r×n step, row factors, and a broadcasting error. Ours scales per column."""
    shape = (12, 5)
    p = torch.randn(shape, requires_grad=True)
    opt = fira.FiraAdamW([{"params": [p], "rank": 5, "update_proj_gap": 2, "alpha": 0.5, "proj_type": "left"}],
                         no_deprecation_warning=True)
    p.grad = torch.randn(shape)
    with pytest.raises(RuntimeError, match="must match the size"):
        opt.step()
    q = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ours = algorithms.make("fira_adamw", [q], variant="official", rank=5, scale=0.5, proj_side="left")
    for _ in range(3):
        q.grad = torch.randn(shape, dtype=torch.float64)
        ours.step()
    assert torch.isfinite(q).all()


def test_official_reverse_std_square_projected_gradient_is_lifted_on_the_wrong_side(galore_torch):
    """galore-torch 1.0 ``reverse_std`` on a wide matrix at rank = m: the m×m projected step is lifted on
    the left (shape error). Ours lifts on the side it projected."""
    shape = (6, 10)
    p = torch.randn(shape, requires_grad=True)
    opt = galore_torch.GaLoreAdamW([{"params": [p], "rank": 6, "update_proj_gap": 2, "scale": 1.0,
                                     "proj_type": "reverse_std"}], no_deprecation_warning=True)
    p.grad = torch.randn(shape)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        opt.step()
    q = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ours = algorithms.make("galore_adamw", [q], variant="official", rank=6, proj_side="reverse_std")
    q.grad = torch.randn(shape, dtype=torch.float64)
    ours.step()
    assert ours.state[q]["basis"].shape == (10, 6) and torch.isfinite(q).all()
