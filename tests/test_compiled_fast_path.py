"""``fast="compile"`` (algorithms/_compiled.py) equals the eager fast path (``fast=True``) in float64 to round-off.

The compiled updates are inductor's fusion of the same multi-tensor ops, so they may round differently
(contracted multiply-adds) but never by more than a few units in the last place per step; both paths
run ``STEPS`` steps from the same parameters on the contract battery's loss and every parameter and
state tensor is compared (tests/test_fast_path.py's comparison). Power: a planted bug in the compiled
function (β₂ off by 1e-6 relative, applied only to the compiled kernel) must fail the same comparison,
and a "compiled" run that did not compile is caught by counting dynamo's compiled frames. Under a
learning-rate schedule (a new ``lr`` every step) the compiled path still compiles once per function.

Inductor's CPU backend compiles C++ (a few seconds per function): Lion runs in CI, the rest is ``slow``.
"""

from __future__ import annotations

import pytest
import torch

import algorithms
from algorithms import _compiled

from .optim_db import OPTIM_DB
from .test_fast_path import RTOL, run_both_modes, worst_difference

SHAPES = [(12, 5), (7,), (8, 8), (12, 5), ()]
STEPS = 6
#: (optimizer, input description): Adam with decoupled decay, Lion, Adam-SN, and GaLore's dense parameters
SLOW = pytest.mark.slow
CASES = [pytest.param("adam", "hf_wd", marks=SLOW, id="adam"), pytest.param("lion", None, id="lion"),
         pytest.param("adam_sn", None, marks=SLOW, id="adam_sn"),
         pytest.param("galore_adamw", None, marks=SLOW, id="galore_adamw")]


def kwargs_of(name, desc):
    inputs = OPTIM_DB[name].inputs
    return next(i for i in inputs if desc is None or i.desc == desc).kwargs


@pytest.mark.parametrize("name,desc", CASES)
def test_compiled_equals_eager(name, desc):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    runs = run_both_modes(name, kwargs_of(name, desc), SHAPES, modes=(True, "compile"), steps=STEPS)
    worst, compared = worst_difference(runs)
    assert 1 <= counters["frames"]["ok"] <= 2, "fast='compile' must compile, once per function (no recompilation per step)"
    assert compared > len(SHAPES) and worst <= RTOL, f"max relative difference {worst:.3e}"


@SLOW
def test_planted_bug_in_the_compiled_kernel_is_caught(monkeypatch):
    from algorithms.adam import adam_update_foreach

    torch._dynamo.reset()

    def buggy(*args, **kwargs):
        kwargs["beta2"] = kwargs["beta2"] * (1 + 1e-6)
        return adam_update_foreach(*args, **kwargs)

    monkeypatch.setitem(_compiled._COMPILED, adam_update_foreach, torch.compile(buggy, dynamic=True))
    worst, _ = worst_difference(run_both_modes("adam", kwargs_of("adam", "hf_wd"), SHAPES, modes=(True, "compile"),
                                               steps=STEPS))
    assert worst > 1e3 * RTOL, f"a planted bug went unnoticed (max relative difference {worst:.3e})"


def test_compile_mode_is_validated():
    p = torch.zeros(3, requires_grad=True)
    assert algorithms.make("adam", [p], fast="compile").fast == "compile"
    with pytest.raises(ValueError, match="'compile'"):
        algorithms.make("adam", [p], fast="compiled")


@pytest.mark.parametrize("name,desc", [pytest.param("lion", None, id="lion"),
                                       pytest.param("adam", "hf_wd", marks=SLOW, id="adam")])
def test_a_learning_rate_schedule_does_not_recompile(name, desc):
    """A new ``lr`` every step (warm-up then decay): one compiled frame per function, equal to eager."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    schedule = [0.25, 0.5, 1.0, 0.8, 0.6, 0.3].__getitem__
    runs = run_both_modes(name, kwargs_of(name, desc), SHAPES, modes=(True, "compile"), steps=STEPS, schedule=schedule)
    worst, compared = worst_difference(runs)
    assert 1 <= counters["frames"]["ok"] <= 2, f"{counters['frames']['ok']} compiled frames: lr recompiled"
    assert compared > len(SHAPES) and worst <= RTOL, f"max relative difference {worst:.3e}"
