"""paper_checks/baselines.py: the textbook rates the engine must find; a failed one is an asserted FAIL."""

from __future__ import annotations

from paper_checks import baselines

from .planted import claim_result, paper_results


def test_committed_results():
    got = paper_results(baselines.PAPER)
    assert not [k for k, r in got.items() if r["verdict"] == "ERROR"]
    for key in ("baselines.rate.sgd/gd-bound", "baselines.rate.sgd/slope", "baselines.rate.adam/slope",
                "baselines.oracle.torch-adamw-for-loop-float64"):
        assert got[key]["verdict"] == "PASS" and got[key]["asserted"], got[key]


def test_a_failed_descent_bound_is_an_asserted_fail(planted):
    planted.rate_row("sgd/gd-bound", outcome="FAIL", reason="above the bound at T = 64")
    out = claim_result("baselines.rate.sgd/gd-bound")
    assert out["verdict"] == "FAIL" and out["asserted"]


def test_a_pass_whose_reason_lost_its_gate_is_an_error(planted):
    planted.rate_row("lion/slope", reason="inside")  # a reported row always carries the gate's words
    assert claim_result("baselines.rate.lion/slope")["verdict"] == "ERROR"
