"""torch.compile(opt.step) with the inductor backend equals the eager step, for every registered optimizer.

One step is compiled (after one eager step that creates the state) on a 6x4 matrix and a 4-vector in
float64 and compared with the same step run eagerly. Measured on 2 cores with an empty inductor
cache: about 40 s for the 17 optimizers (``compile_threads=1``: no compile-worker pool to start).

Upstream: inductor drops ``alpha`` in ``add(mm(...), other, alpha=...)`` (pytorch/pytorch#167313, open
on the pinned torch 2.13), which moved GaLore, LDAdam and AdaRankGrad parameters about 100–400x too
far; their matrix-product paths now call ``sub_(product, alpha=c)`` instead of ``add_(product, alpha=-c)``:
the same eager arithmetic bit for bit (ATen's sub is add with −alpha), and inductor keeps alpha in sub.
``test_upstream_inductor_drops_alpha`` keeps the two-line repro as a strict xfail: when it starts
passing, upstream is fixed. Also noticed (not worked around): with automatic dynamic shapes, a
step recompiled for a third parameter shape can stop inside dynamo for GaLore/Fira ("sources must
not be empty for symbol"), an error rather than a wrong result; ``dynamic=False`` avoids it.
"""

from __future__ import annotations

import logging
import shutil
import sys

import pytest
import torch

import algorithms
from algorithms.galore_adamw import GaLoreAdamW
from algorithms._galore import subspace_direction, update_moments
from algorithms.weight_decay import decay_after, decay_before
from algorithms.projection import project_back

from .optim_db import OPTIM_DB

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="inductor's CPU backend needs a C++ compiler")

UPSTREAM = "pytorch/pytorch#167313: inductor drops alpha in add(mm, alpha=...)"
SHAPES = [(6, 4), (4,)]


@pytest.fixture(autouse=True)
def quiet_single_threaded_inductor(monkeypatch):
    monkeypatch.setattr(torch._inductor.config, "compile_threads", 1)
    torch._dynamo.reset()
    torch._logging.set_logs(dynamo=logging.ERROR, inductor=logging.ERROR)
    yield
    torch._logging.set_logs()
    torch._dynamo.reset()


def compiled_vs_eager(make_optimizer, dynamic: bool | None = None) -> tuple[float, float]:
    """(max |compiled − eager| after one compiled step, max |eager step|)."""
    g = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES] for _ in range(2)]
    eager = [x.clone().requires_grad_() for x in init]
    comp = [x.clone().requires_grad_() for x in init]
    opt_eager, opt_comp = make_optimizer(eager), make_optimizer(comp)
    step_compiled = torch.compile(opt_comp.step, backend="inductor", dynamic=dynamic)
    for t, step in enumerate((opt_comp.step, step_compiled)):  # one eager step creates the state
        for p, q, gr in zip(eager, comp, grads[t]):
            p.grad, q.grad = gr.clone(), gr.clone()
        before = [p.detach().clone() for p in eager]
        opt_eager.step()
        step()
    moved = max(float((p - b).abs().max()) for p, b in zip(eager, before))
    err = max(float((p - q).abs().max()) for p, q in zip(eager, comp))
    return err, moved


@pytest.mark.parametrize("name", sorted(OPTIM_DB))
def test_compiled_step_equals_eager(name):
    kwargs = OPTIM_DB[name].inputs[0].kwargs
    err, moved = compiled_vs_eager(lambda params: algorithms.make(name, params, **kwargs))
    assert moved > 0
    assert err <= 1e-12 * moved, f"{name}: compiled step differs from eager by {err:.2e} (step {moved:.2e})"


def _inductor_drops_alpha() -> bool:
    def f(p, a, b):
        return p.add(a @ b, alpha=-0.01)

    g = torch.Generator().manual_seed(0)
    p, a, b = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((6, 4), (6, 2), (2, 4)))
    return not torch.allclose(torch.compile(f, backend="inductor")(p, a, b), f(p, a, b))


@pytest.mark.xfail(strict=True, reason=UPSTREAM)
def test_upstream_inductor_drops_alpha():
    assert not _inductor_drops_alpha()


class _GaLoreWithAlphaOnTheProduct(GaLoreAdamW):
    """The projected step as it was before the workaround: ``param.add_(P N, alpha=-lr·α)``."""

    def _projected_step(self, p, grad, R, state, group, side):
        lr, wd, timing = float(group["lr"]), group["weight_decay"], group["weight_decay_timing"]
        decay_before(p, lr, wd, timing)
        update_moments(R, state["exp_avg"], state["exp_avg_sq"], *group["betas"])
        N = subspace_direction(state["exp_avg"], state["exp_avg_sq"], int(state["step"]), group)
        p.add_(project_back(N, state["basis"], side), alpha=-lr * group["scale"])
        decay_after(p, lr, wd, timing)


def test_the_comparison_catches_the_old_galore_pattern():
    """Power: while upstream drops alpha, the comparison flags the pre-workaround GaLore step."""
    if not _inductor_drops_alpha():
        pytest.skip("this torch keeps alpha (upstream fixed): nothing to catch")
    torch._dynamo.reset()
    kwargs = OPTIM_DB["galore_adamw"].inputs[0].kwargs
    eager_equal, _ = compiled_vs_eager(lambda params: GaLoreAdamW(params, **kwargs))
    torch._dynamo.reset()
    err, moved = compiled_vs_eager(lambda params: _GaLoreWithAlphaOnTheProduct(params, **kwargs))
    assert eager_equal <= 1e-12 * moved < err


#: inputs whose eager step itself rounds to bfloat16 at every Newton–Schulz operation, which inductor
#: fuses and rounds once: the two differ by bfloat16 round-off (measured 5e-2 of the step), not a bug
_BF16_INPUTS = {("mars_shampoo", "official_ns_bf16_wd")}


@pytest.mark.slow
@pytest.mark.parametrize("name,desc", [(i.name, inp.desc) for i in OPTIM_DB.values() for inp in i.inputs
                                       if not inp.step_requires_closure and (i.name, inp.desc) not in _BF16_INPUTS])
def test_every_input_compiles_to_the_eager_step_with_static_shapes(name, desc, monkeypatch):
    """Every input of every optimizer, a square matrix too, ``dynamic=False`` (see the module docstring)."""
    monkeypatch.setattr(sys.modules[__name__], "SHAPES", [(6, 4), (4,), (5, 5)])
    kwargs = next(inp.kwargs for inp in OPTIM_DB[name].inputs if inp.desc == desc)
    err, moved = compiled_vs_eager(lambda params: algorithms.make(name, params, **kwargs), dynamic=False)
    assert err <= 1e-12 * moved, f"{name}[{desc}]: compiled step differs from eager by {err:.2e} (step {moved:.2e})"
