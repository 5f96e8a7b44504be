"""paper_checks/ldadam.py: every rate claim is reported ([U]); planted bad results never pass."""

from __future__ import annotations

from paper_checks import ldadam

from .planted import assert_not_good, claim_result, paper_results


def test_committed_results():
    got = paper_results(ldadam.PAPER)
    assert not [k for k, r in got.items() if r["verdict"] == "ERROR"]
    rates = {k: r for k, r in got.items() if r["kind"] == "rate"}
    assert len(rates) == 4 and not any(r["asserted"] for r in rates.values())  # Theorem 1 is unverified
    for key in ("ldadam.code.ldadam/variants", "ldadam.code.ldadam/reverse_std_square",
                "ldadam.memory.state-like-galore", "ldadam.memory.gpu-state-equals-formula"):
        assert got[key]["verdict"] == "PASS" and got[key]["asserted"], got[key]


def test_an_unverified_rate_claim_never_passes_even_on_a_pass(planted):
    planted.rate_row("ldadam/slope-r4", outcome="PASS", power={"measured": True, "powered": True},
                     reason="reported, not asserted: the claim is [U] (unverified reconstruction); inside")
    out = claim_result("ldadam.rate.ldadam/slope-r4")
    assert out["verdict"] == "CONSISTENT" and not out["asserted"]


def test_a_failed_rate_row_is_inconsistent(planted):
    planted.rate_row("ldadam/slope-r2", outcome="FAIL", power={"measured": True, "powered": True},
                     reason="reported, not asserted: the claim is [U] (unverified reconstruction); slope −0.2")
    assert_not_good(claim_result("ldadam.rate.ldadam/slope-r2"), asserted=False)


def test_a_renamed_or_retagged_rate_row_is_an_error(planted):
    planted.rate_row("ldadam/slope-r2", **{"key": "ldadam/slope-r2-renamed"})
    assert claim_result("ldadam.rate.ldadam/slope-r2")["verdict"] == "ERROR"
    planted.rate_row("ldadam/slope-r4", provenance="[P]")
    out = claim_result("ldadam.rate.ldadam/slope-r4")
    assert out["verdict"] == "ERROR" and "tagged" in out["reason"]


def test_float32_noise_above_round_off_fails_the_variant_claim(planted):
    planted.variant("ldadam/variants", max_error=3e-4)
    assert claim_result("ldadam.code.ldadam/variants")["verdict"] == "FAIL"


def test_a_square_matrix_that_does_not_move_fails_the_side_claim(planted):
    def change(d):
        row = next(r for r in d["results"] if r["key"] == "ldadam/reverse_std_square")
        row["max_error_per_param"]["square"] = 1e-9
    planted.edit("variants/variants.json", change)
    assert claim_result("ldadam.code.ldadam/reverse_std_square")["verdict"] == "FAIL"


def test_a_state_unlike_galore_fails(planted):
    def change(d):
        row = next(r for r in d["models"]["llama-350m"] if r["algorithm"] == "ldadam")
        row["states"] += 1
    planted.edit("memory/model_totals.json", change)
    assert claim_result("ldadam.memory.state-like-galore")["verdict"] == "FAIL"


def test_a_gpu_state_off_the_formula_fails(planted):
    def change(d):
        row = next(r for r in d["results"] if r["algorithm"] == "ldadam")
        row["state_exact"] = False
    planted.edit("memory/gpu_memory.json", change)
    assert claim_result("ldadam.memory.gpu-state-equals-formula")["verdict"] == "FAIL"
