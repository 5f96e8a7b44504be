"""verify/verdicts.py: the one vocabulary (tags, outcomes, the gate) and its documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify.verdicts import (TAGS, Outcome, count_verdicts, error_verdict, exit_status, gate, gated_row, judged,
                             parse_tag, tag_table_markdown)

DOC = Path(__file__).resolve().parents[2] / "docs" / "verdicts.md"


def test_the_documented_tag_table_is_the_code_table():
    text = DOC.read_text()
    start = text.index("<!-- tag-table")
    body = text[text.index("\n", start) + 1: text.index("<!-- end tag-table -->")].strip()
    assert body == tag_table_markdown()


@pytest.mark.parametrize("code", sorted(TAGS))
def test_every_tag_is_gated_by_its_table_entry(code):
    v = gate(Outcome("PASS", "inside"), f"[{code}]")
    assert v.asserted == TAGS[code].assertable
    assert v.verdict == ("PASS" if TAGS[code].assertable else "CONSISTENT")
    assert v.provenance == f"[{code}]"


@pytest.mark.parametrize("outcome, word", [("PASS", "CONSISTENT"), ("FAIL", "INCONSISTENT"),
                                           ("INCONCLUSIVE", "INCONCLUSIVE"), ("MEASURED", "MEASURED")])
def test_an_unassessed_check_is_reported_with_its_reason(outcome, word):
    v = gate(Outcome(outcome, "the slope"), "P", assess=False, not_assessed_because="no power against η ∝ T^-0.4")
    assert not v.asserted and v.verdict == word
    if outcome != "MEASURED":
        assert "no power" in v.reason


def test_measured_is_never_asserted_even_for_a_verified_tag():
    v = gate(Outcome("MEASURED", "a number"), "D")
    assert v.verdict == "MEASURED" and not v.asserted


def test_bad_tags_and_outcomes_are_errors():
    with pytest.raises(ValueError, match="known"):
        parse_tag("X")
    with pytest.raises(TypeError, match="provenance"):
        parse_tag(None)
    with pytest.raises(ValueError, match="outcome"):
        Outcome("MAYBE", "why")
    with pytest.raises(ValueError, match="reason"):
        Outcome("PASS", "")


def test_exit_status_counts_asserted_failures_and_errors_only():
    passed = gate(Outcome("PASS", "ok"), "P").to_dict()
    reported_fail = gate(Outcome("FAIL", "off"), "U").to_dict()
    assert exit_status([passed, reported_fail]) == 0
    assert exit_status([passed, gate(Outcome("FAIL", "off"), "D").to_dict()]) == 1
    assert exit_status([error_verdict("no row", "P").to_dict()]) == 1
    assert exit_status([error_verdict("no row", "U").to_dict()]) == 0
    counts = count_verdicts([passed, reported_fail])
    assert counts["asserted"]["PASS"] == 1 and counts["reported"]["INCONSISTENT"] == 1


# ----------------------------------------------------------------------------- the one result row
ROW_KEYS = ["key", "verdict", "outcome", "asserted", "reason", "provenance", "numbers", "seconds"]


def test_gated_row_has_the_one_shape_and_turns_crashes_into_errors():
    row, outcome = gated_row("k", lambda: judged(True, "fine", {"x": float("nan")}), "P", group="g")
    assert [k for k in row if k != "group"] == ROW_KEYS and row["group"] == "g"
    assert row["verdict"] == "PASS" and row["asserted"] and row["numbers"] == {"x": None}  # strict JSON
    assert outcome.outcome == "PASS"
    row, outcome = gated_row("k", lambda: judged(False, "bad"), "U")
    assert (row["verdict"], row["asserted"]) == ("INCONSISTENT", False)

    def crash():
        raise RuntimeError("boom")

    row, outcome = gated_row("k", crash, "D")
    assert outcome is None and row["verdict"] == "ERROR" and row["asserted"] and "boom" in row["reason"]
    row, _ = gated_row("k", lambda: (True, "a tuple"), "D")
    assert row["verdict"] == "ERROR" and "not an Outcome" in row["reason"]
    assert exit_status([row]) == 1


def test_check_rank_and_claims_print_the_same_row_shape(monkeypatch, capsys):
    """verify check (a suite check), verify rank (a rank check) and verify claims give rows of one shape."""
    import paper_checks
    from verify import rank, suite
    from verify.claims import load_claims, run_claim

    monkeypatch.setattr(suite, "CHECKS", [suite.Check("always", "demo", lambda quick: judged(True, "ok"))])
    monkeypatch.setattr(suite, "load_checks", lambda: suite.CHECKS)
    check_row = suite.run_suite()[0]
    monkeypatch.setitem(rank.CHECKS, "lemma33", rank.RankCheck(lambda quick: judged(False, "planted"), "P", "t"))
    rank_row = rank.run_checks(["lemma33"], echo=lambda line: None)[0]
    claim_row = run_claim(load_claims(paper_checks)[0])
    for row in (check_row, rank_row, claim_row):
        assert set(ROW_KEYS) <= set(row), row
    assert rank_row["verdict"] == "FAIL" and exit_status([rank_row]) == 1


def test_verify_check_exit_status_follows_the_asserted_verdicts(monkeypatch, capsys):
    from verify import suite
    from verify.cli import main

    checks = [suite.Check("fine", "demo", lambda quick: judged(True, "ok")),
              suite.Check("second-hand", "demo", lambda quick: judged(False, "disagrees"), provenance="S")]
    monkeypatch.setattr(suite, "load_checks", lambda: checks)
    assert main(["check"]) == 0  # a reported INCONSISTENT never fails the command
    out = capsys.readouterr().out
    assert "[PASS]" in out and "[INCONSISTENT]" in out
    checks.append(suite.Check("broken", "demo", lambda quick: judged(False, "planted bug")))
    assert main(["check"]) == 1
