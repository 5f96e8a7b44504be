"""paper_checks/mars.py: verdicts on the committed results, and planted bad results never pass."""

from __future__ import annotations

from paper_checks import mars

from .planted import claim_result, paper_results


def test_committed_results():
    got = paper_results(mars.PAPER)
    assert not [k for k, r in got.items() if r["verdict"] == "ERROR"]
    for key in ("mars.rate.mars_adamw/gamma-gap", "mars.identity.mars_lion/lion_identity",
                "mars.identity.mars_adamw/gamma0_identity", "mars.code.mars_adamw/first_step_clipped",
                "mars.code.mars_lion/first_step", "mars.code.mars_shampoo/shape_factor",
                "mars.memory.mars-state-relative-to-adamw.llama-1b.mars-adamw-exact-official",
                "mars.memory.mars-state-relative-to-adamw.llama-1b.mars-adamw-exact-toolkit"):
        assert got[key]["verdict"] == "PASS" and got[key]["asserted"], got[key]
    # the Õ(T^-2/3) slope: asserted tag, but the engine has no power there: reported
    slope = got["mars.rate.mars_adamw/slope"]
    assert not slope["asserted"] and "no power" in slope["reason"]


def test_a_failed_asserted_rate_is_a_fail(planted):
    planted.rate_row("mars_adamw/gamma-gap", outcome="FAIL", reason="γ = 1 does not beat γ = 0")
    out = claim_result("mars.rate.mars_adamw/gamma-gap")
    assert out["verdict"] == "FAIL" and out["asserted"]


def test_a_row_of_another_theorem_is_an_error(planted):
    planted.rate_row("mars_adamw/gamma-gap", theorem="sgd_horizon")
    assert claim_result("mars.rate.mars_adamw/gamma-gap")["verdict"] == "ERROR"


def test_a_broken_identity_fails(planted):
    planted.variant("mars_lion/lion_identity", first_parting_step=5, max_error=1e-3)
    assert claim_result("mars.identity.mars_lion/lion_identity")["verdict"] == "FAIL"


def test_a_ratio_off_by_more_than_the_print_step_fails(planted):
    planted.memory_cell("MARS state relative to AdamW", "llama-1b", "mars_adamw_exact (official)",
                        ours={"ratio": 1.5})
    assert claim_result("mars.memory.mars-state-relative-to-adamw.llama-1b.mars-adamw-exact-official")["verdict"] \
        == "FAIL"


def test_a_changed_printed_value_is_an_error(planted):
    planted.memory_cell("MARS state relative to AdamW", "llama-1b", "mars_adamw_exact (official)", paper_value=3.0)
    assert claim_result("mars.memory.mars-state-relative-to-adamw.llama-1b.mars-adamw-exact-official")["verdict"] \
        == "ERROR"


def test_a_shape_factor_on_the_wrong_matrix_fails(planted):
    planted.variant("mars_shampoo/shape_factor",
                    first_parting_step_per_param={"tall": 1, "wide": 1, "square": None, "tensor": None,
                                                  "vector": None, "scalar": None})
    assert claim_result("mars.code.mars_shampoo/shape_factor")["verdict"] == "FAIL"


def test_a_non_finite_difference_is_an_error(planted):
    def change(d):
        row = next(r for r in d["results"] if r["key"] == "mars_adamw/clip")
        row["max_error_per_step"][3] = None
    planted.edit("variants/variants.json", change)
    assert claim_result("mars.code.mars_adamw/clip")["verdict"] == "ERROR"
