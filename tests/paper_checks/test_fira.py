"""paper_checks/fira.py: verdicts on the committed results, and planted bad results never pass."""

from __future__ import annotations

from paper_checks import fira

from .planted import claim_result, paper_results


def test_committed_results():
    got = paper_results(fira.PAPER)
    assert not [k for k, r in got.items() if r["verdict"] == "ERROR"]
    for key in ("fira.memory.1b-state-saving", "fira.memory.table8-same-as-galore", "fira.oracle.fira-alpha",
                "fira.oracle.fira-alpha-paper-residual", "fira.code.fira_adamw/residual_form",
                "fira.code.fira_adamw/residual_form_alpha1", "fira.code.fira_adamw/limiter_ratio_alpha1",
                "fira.memory.fira-table-3.llama-350m.fira-galore"):
        assert got[key]["verdict"] == "PASS" and got[key]["asserted"], got[key]
    cell = got["fira.memory.fira-table-3.llama-1b.full-rank"]
    assert cell["verdict"] == "INCONSISTENT" and not cell["asserted"]


def test_a_residual_that_agrees_at_alpha_quarter_fails_the_documented_difference(planted):
    planted.variant("fira_adamw/residual_form", first_parting_step=None, max_error=0.0,
                    first_parting_step_per_param={n: None for n in ("tall", "wide", "square", "tensor", "vector",
                                                                    "scalar")})
    assert claim_result("fira.code.fira_adamw/residual_form")["verdict"] == "FAIL"


def test_a_residual_that_differs_at_alpha_one_fails(planted):
    planted.variant("fira_adamw/residual_form_alpha1", first_parting_step=3, max_error=2e-4)
    out = claim_result("fira.code.fira_adamw/residual_form_alpha1")
    assert out["verdict"] == "FAIL" and "claimed None" in out["reason"]


def test_a_larger_fira_state_fails_the_table8_claim(planted):
    def bigger(d):
        row = next(r for r in d["models"]["llama-1b"] if r["algorithm"] == "fira_adamw")
        row["states"] += 50_000_000
    planted.edit("memory/model_totals.json", bigger)
    assert claim_result("fira.memory.table8-same-as-galore")["verdict"] == "FAIL"


def test_a_saving_that_does_not_print_611_fails(planted):
    def change(d):
        row = next(r for r in d["models"]["llama-1b"] if r["algorithm"] == "adam")
        row["states"] = int(row["states"] * 1.05)
    planted.edit("memory/model_totals.json", change)
    assert claim_result("fira.memory.1b-state-saving")["verdict"] == "FAIL"


def test_a_difference_of_printed_tables_that_stops_matching_is_reported_inconsistent(planted):
    planted.memory_cell("Fira Table 3 − GaLore Table 2", "llama-60m", "GaLore", verdict="mismatch", matches=[])
    out = claim_result("fira.memory.fira-table-3-galore-table-2.llama-60m.galore")
    assert out["verdict"] == "INCONSISTENT" and not out["asserted"]


def test_the_paper_residual_agreeing_with_the_code_fails(planted):
    planted.thirdparty("fira-alpha-paper-residual", verdict="PASS", first_failure=None)
    assert claim_result("fira.oracle.fira-alpha-paper-residual")["verdict"] == "FAIL"


def test_a_missing_oracle_file_is_an_error(planted):
    planted.remove("oracle/thirdparty.json")
    out = claim_result("fira.oracle.fira")
    assert out["verdict"] == "ERROR" and out["asserted"]
