"""Every result the engines saved is claimed by a paper module, once; the claims agree with the
engines' own verdicts; nothing cites a specification file."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

import paper_checks
from paper_checks import _results
from verify import variants
from verify.claims import load_claims, run_claim
from paper_checks import PAPER_MODULES
from verify.verdicts import assertable

RESULTS = _results.RESULTS


@pytest.fixture(scope="module")
def claims():
    return load_claims(paper_checks)


@pytest.fixture(scope="module")
def results(claims):
    return {c.key: run_claim(c) for c in claims}


def _rate_keys(claims):
    return Counter(c.key.split(".rate.", 1)[1] for c in claims if c.kind == "rate")


def test_every_rate_row_is_claimed_once(claims):
    rows = json.loads((RESULTS / "rates/quick/verdicts.json").read_text())["results"]
    claimed = _rate_keys(claims)
    assert sorted(k for k, n in claimed.items() if n > 1) == []
    assert sorted({r["key"] for r in rows} - set(claimed)) == []
    assert sorted(set(claimed) - {r["key"] for r in rows}) == []
    theorems = {r["theorem"] for r in rows}
    assert theorems <= set(json.loads((RESULTS / "rates/quick/theorems.json").read_text()))


def test_rate_claims_carry_the_rate_engines_verdict_and_words(claims, results):
    rows = {r["key"]: r for r in json.loads((RESULTS / "rates/quick/verdicts.json").read_text())["results"]}
    for c in claims:
        if c.kind != "rate":
            continue
        row, got = rows[c.key.split(".rate.", 1)[1]], results[c.key]
        assert (got["verdict"], got["asserted"], got["reason"]) == (row["verdict"], row["asserted"], row["reason"]), c.key


def _specs(claims, kind):
    return [_results.SPECS[c.key] for c in claims if isinstance(_results.SPECS.get(c.key), kind)]


def test_every_memory_cell_of_the_comparison_is_claimed_once(claims):
    cells = json.loads((RESULTS / "memory/paper_comparison.json").read_text())["cells"]
    specs = _specs(claims, _results.MemoryCell)
    hits = Counter()
    for cell in cells:
        for s in specs:
            if cell["source"].startswith(s.source) and (cell["model"], cell["entry"]) == (s.model, s.entry):
                hits[(cell["source"], cell["model"], cell["entry"])] += 1
    assert len(hits) == len(cells) == len(specs) and set(hits.values()) == {1}


def test_every_comparison_of_the_variants_engine_is_claimed_once(claims):
    claimed = Counter(s.key for s in _specs(claims, _results.VariantClaim))
    assert set(claimed) == {c.key for c in variants.COMPARISONS}
    assert set(claimed.values()) == {1}


def test_every_paper_module_has_claims_of_each_family(claims):
    by_paper = {}
    for c in claims:
        by_paper.setdefault(c.paper, set()).add(c.kind)
    for name in PAPER_MODULES:
        module = __import__(f"paper_checks.{name}", fromlist=["PAPER"])
        assert "rate" in by_paper[module.PAPER], name
        if name != "baselines":
            assert {"memory", "gpu"} <= by_paper[module.PAPER], name


def test_committed_results_give_no_errors_and_only_allowed_assertions(results):
    assert [k for k, r in results.items() if r["verdict"] == "ERROR"] == []
    for key, r in results.items():
        if r["verdict"] in ("PASS", "FAIL"):
            assert r["asserted"] and assertable(r["provenance"]), key
        assert r["reason"] and r["statement"] and r["where"], key


def test_figures_exist(claims):
    missing = [(c.key, f) for c in claims for f in c.figures if not (RESULTS / f).is_file()]
    assert missing == []


SPEC_FILE = re.compile(r"\b(theory|memory|mars|sn-sm|galore|fira|ldadam|adarankgrad|rank-decay|gpu-validation|"
                       r"anchors-testing-style)\.md\b")


def test_no_claim_cites_a_specification_file(claims, results):
    for c in claims:
        for text in (c.statement, c.where, results[c.key]["reason"]):
            assert not SPEC_FILE.search(text), (c.key, text)
