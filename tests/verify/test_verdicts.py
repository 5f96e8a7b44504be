"""verify/verdicts.py: the one vocabulary (tags, outcomes, the gate) and its documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify.verdicts import (TAGS, Outcome, count_verdicts, error_verdict, exit_status, gate, parse_tag,
                             tag_table_markdown)

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
