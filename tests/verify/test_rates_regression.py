"""verify/rates/regression.py: one-line bugs on code paths that no rate claim covers are caught by comparing
a rerun with the committed clean quick grid (what `make test` runs as `verify rates --quick --regression`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from verify.rates.cells import build
from verify.rates.checks import evaluate_check
from verify.rates.execute import run_cell
from verify.rates.regression import compare_with_baseline
from verify.rates.sweep import results_dir

BASELINE = results_dir(Path(__file__).resolve().parents[2] / "results" / "rates", "quick")
CELLS, CHECKS = build("quick")
BY_CELL = {c.key: c for c in CELLS}
BY_CHECK = {c.key: c for c in CHECKS}

#: (cell, its measured check, the planted bug): the bugs the issue listed as invisible to every claim
CASES = [
    ("adam/p1-weight-decay", "adam/weight-decay-slope", "adam_decay_as_l2"),
    ("galore_adamw/mq-alpha", "galore_adamw/alpha-slope", "galore_scale_twice"),
    ("adarankgrad/mq-adaptive", "adarankgrad/adaptive-slope", "adarankgrad_rank_frozen"),
    ("mars_adamw/p1-clip", "mars_adamw/clip-slope", "mars_remembers_clipped"),
    ("adam_sn/mq-heuristics", "adam_sn/heuristics-slope", "adam_sn_heuristics_wrong_axis"),
]


def _as_committed_cell(cell, row):
    """The bug's row presented as the committed cell's (the same settings, other code): what a rerun sees."""
    return {**row, "key": cell.key, "digest": cell.digest(), "spec": cell.spec()}


def _compare(cell, check, row):
    result = evaluate_check(check, {cell.key: row}, n_resamples=500)
    return compare_with_baseline([result], {cell.key: row}, BASELINE)


@pytest.mark.skipif(not (BASELINE / "verdicts.json").exists(), reason="no committed quick grid")
@pytest.mark.parametrize("cell_key, check_key, mutant", CASES, ids=[c[2] for c in CASES])
def test_a_bug_no_claim_sees_moves_a_committed_number(cell_key, check_key, mutant):
    cell, check = BY_CELL[cell_key], BY_CHECK[check_key]
    buggy = _as_committed_cell(cell, run_cell(replace(cell, algorithm=f"mutant:{mutant}")))
    report = _compare(cell, check, buggy)
    assert report["failed"] and report["moved"], report
    assert report["cells_compared"] == 1 and report["checks_compared"] == 1


@pytest.mark.skipif(not (BASELINE / "verdicts.json").exists(), reason="no committed quick grid")
def test_the_correct_code_reproduces_the_committed_numbers():
    cell, check = BY_CELL["adam_sn/mq-heuristics"], BY_CHECK["adam_sn/heuristics-slope"]
    report = _compare(cell, check, run_cell(cell))
    assert not report["failed"], report
    assert report["cells_compared"] == 1 and report["checks_compared"] == 1
