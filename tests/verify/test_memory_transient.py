"""verify/memory/transient.py: the allocation tracker on known op sequences, and one optimizer whose
documented temporaries are exact (Adam); the per-algorithm comparison is a report (cpu_transients.json)."""

from __future__ import annotations

import gc

import pytest
import torch

import algorithms
from verify.memory.formulas import group_transient, param_memory
from verify.memory.transient import AllocationTracker, measure_step, state_tensors, transient_report


def test_tracker_counts_new_storages_and_frees():
    with AllocationTracker() as tr:
        a = torch.ones(1000, dtype=torch.float64)  # +8000
        b = a * 2  # +8000 -> 16000
        del a  # -> 8000
        c = b + 1  # -> 16000
        d = c.view(10, 100)  # a view: no new storage
        del b, c  # c stays alive through d -> 8000
        b2 = d.add_(1)  # in place: nothing new
    assert tr.peak == 16000
    assert tr.current == 8000
    del d, b2
    gc.collect()
    assert tr.current == 0


def test_tracker_ignores_views_of_preexisting_and_subtracts_replaced_state():
    x = torch.zeros(500, dtype=torch.float32)  # 2000 bytes, exists before
    holder = {"x": x}
    del x
    with AllocationTracker(preexisting=[holder["x"]]) as tr:
        v = holder["x"].view(5, 100)  # view of a pre-existing tensor: not new
        holder["x"] = torch.ones(250, dtype=torch.float32)  # +1000 new; the old 2000 freed only with v
        del v
    assert tr.peak == 1000
    assert tr.current == 1000 - 2000


def test_adam_step_transient_equals_the_documented_temporaries():
    p = torch.randn(12, 5, dtype=torch.float64, requires_grad=True)
    opt = algorithms.make("adam", [p], lr=1e-2)
    p.grad = torch.randn(12, 5, dtype=torch.float64)
    first_peak, first_end = measure_step(opt)
    fm = param_memory("adam", (12, 5), opt.param_groups[0])
    state_bytes = fm.nbytes(8)
    assert first_end == state_bytes  # exp_avg, exp_avg_sq and the int64 step: created in the first step
    assert first_peak == state_bytes + fm.transient_bytes(8)
    for _ in range(3):
        p.grad = torch.randn(12, 5, dtype=torch.float64)
        peak, end = measure_step(opt)
        assert peak == fm.transient_bytes(8) == 3 * 60 * 8 and end == 0


def test_state_tensors_walks_nested_state():
    p = torch.randn(4, 3, requires_grad=True)
    opt = algorithms.make("adam", [p], lr=1e-2)
    p.grad = torch.randn(4, 3)
    opt.step()
    assert len(state_tensors(opt)) == 3


def test_transient_report_rows():
    report = transient_report(["adam", "galore_adamw"], shapes=((12, 5),), rank=2, steps=4)
    rows = {r["algorithm"]: r for r in report["rows"]}
    assert rows["adam"]["ratio"] == pytest.approx(1.0)
    assert rows["galore_adamw"]["route"] == "projected" and rows["galore_adamw"]["measured_peak_bytes"] > 0
    assert len(rows["galore_adamw"]["measured_by_step"]) == 4


# ----------------------------------------------------------------------------- a group's step (MARS's c_t)
MARS_SHAPES = ((40, 30), (30, 30), (50, 20))


def _mars_group_peaks(name: str, **hyper) -> tuple[int, int, list[int]]:
    """Measured steady-state step peak of one MARS group of three matrices, the group prediction, and the
    per-parameter predictions."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True) for s in MARS_SHAPES]
    opt = algorithms.make(name, params, lr=1e-3, **hyper)
    peaks = []
    for _ in range(4):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        peaks.append(measure_step(opt)[0])
    assert len(set(peaks[1:])) == 1  # the first step creates the state; later steps repeat
    group = opt.param_groups[0]
    memories = [(param_memory(name, tuple(p.shape), group), 8) for p in params]
    return peaks[-1], group_transient(memories), [fm.transient_bytes(8) for fm, _ in memories]


@pytest.mark.parametrize("clip", ["global", "tensor", "none"])
def test_mars_adamw_group_transient_is_exact(clip):
    measured, predicted, per_param = _mars_group_peaks("mars_adamw", clip=clip)
    assert measured == predicted
    if clip == "global":  # every c_t (1200 + 900 + 1000 elements) is alive at once
        assert predicted == max(per_param) + (1200 + 900 + 1000 - 1200) * 8
    else:  # streamed: one parameter's temporaries at a time
        assert predicted == max(per_param)


def test_group_transient_mutants_fail():
    """A formula that forgets the held c_t under the global clip, and a MARS that keeps every c_t although
    its per-tensor clip does not need them, both disagree with the measurement."""
    measured, _, per_param = _mars_group_peaks("mars_adamw", clip="global")
    assert measured != max(per_param)  # mutant formula: the per-parameter maximum only

    cls = algorithms.REGISTRY["mars_adamw"]
    assert "_streams_corrections" not in vars(cls)  # inherited: the mutant shadows it, then goes away
    try:
        cls._streams_corrections = staticmethod(lambda group: False)
        mutant_measured, predicted, _ = _mars_group_peaks("mars_adamw", clip="tensor")
    finally:
        del cls._streams_corrections
    assert mutant_measured > predicted
    assert _mars_group_peaks("mars_adamw", clip="tensor")[0] == predicted  # the real code again


def test_formula_clip_defaults_match_the_optimizers_variant_tables():
    from verify.methods import mars

    for name, table in mars._MARS_CLIP.items():
        cls = algorithms.REGISTRY[name]
        assert table == {v: cls.VARIANT_DEFAULTS[v]["clip"] for v in cls.VARIANT_DEFAULTS}
