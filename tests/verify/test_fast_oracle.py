"""verify/fast_oracle.py: the device oracle of the fast paths, run here on the CPU in float32 (tiny)."""

from __future__ import annotations

import pytest
import torch

import algorithms.adam
from algorithms._stacked import StackedFastPath
from verify import fast_oracle


def test_fast_paths_pass_on_the_cpu_in_float32_and_stacks_form(monkeypatch):
    sizes = []
    update_stack = StackedFastPath._update_stack

    def recording(self, params, *args, **kwargs):
        sizes.append(len(params))
        return update_stack(self, params, *args, **kwargs)

    monkeypatch.setattr(StackedFastPath, "_update_stack", recording)
    result = fast_oracle.run("cpu", names=["adam", "galore_adamw"], steps=6, refresh=3)
    assert [r["verdict"] for r in result["rows"]] == ["PASS", "PASS"], fast_oracle.markdown(result)
    assert max(sizes) == 3, "the oracle's shapes must form stacks of several matrices"
    assert all(0 < r["fast"]["max_param_error"] < 1e-5 for r in result["rows"])
    assert "| galore_adamw | True | PASS |" in fast_oracle.markdown(result)


def test_a_planted_bug_in_a_fast_path_fails(monkeypatch):
    original = algorithms.adam.adam_update_foreach

    def buggy(*args, **kwargs):
        kwargs["lr"] = kwargs["lr"] * 1.05
        return original(*args, **kwargs)

    monkeypatch.setattr(algorithms.adam, "adam_update_foreach", buggy)
    row = fast_oracle.check("adam", device="cpu", steps=6)
    assert row["verdict"] == "FAIL" and row["reference"]["passed"] and not row["fast"]["passed"]


@pytest.mark.parametrize("fast,reference,expected", [
    ({"passed": True}, {"passed": True}, "PASS"),
    ({"passed": False, "first_failure_step": 3, "max_param_error": 1e-3},
     {"passed": False, "first_failure_step": 2, "max_param_error": 5e-4}, "AS_REFERENCE"),
    ({"passed": False, "first_failure_step": 1, "max_param_error": 1e-3},
     {"passed": False, "first_failure_step": 2, "max_param_error": 5e-4}, "FAIL"),  # fails earlier
    ({"passed": False, "first_failure_step": 3, "max_param_error": 1e-1},
     {"passed": False, "first_failure_step": 2, "max_param_error": 5e-4}, "FAIL"),  # much larger error
    ({"passed": False, "first_failure_step": 3, "max_param_error": None},
     {"passed": False, "first_failure_step": 2, "max_param_error": 5e-4}, "FAIL"),  # not a number
    ({"passed": False, "first_failure_step": 3, "max_param_error": 1e-4},
     {"passed": True, "first_failure_step": None, "max_param_error": 1e-6}, "FAIL"),
])
def test_verdict_rule(fast, reference, expected):
    assert fast_oracle.verdict(fast, reference) == expected


def test_cuda_is_required_for_a_cuda_run():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        fast_oracle.run("cuda", names=["adam"])
