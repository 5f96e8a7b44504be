"""False alarms: a correct algorithm's asserted checks, rerun on 20 master seeds, pass at least 19 times.

Slow (about 7 minutes on 2 cores): the quick-grid cells of the checks below with master seeds 1..20
(disjoint seed streams; the bootstrap is reseeded too). The measured rate for every asserted check of
the quick grid is in the report of issue #6 (script: the same loop over all asserted checks).
"""

import pytest

from verify.rates.cells import build
from verify.rates.checks import evaluate_check
from verify.rates.execute import run_cell

CHECKS = ["adagrad_norm/noisy-slope", "adagrad_norm/noisy-slope-q0.9", "sgd/bound", "sgd/slope", "sgdm/slope"]
MASTER_SEEDS = range(1, 21)


@pytest.mark.slow
def test_correct_checks_pass_at_least_19_of_20_master_seeds():
    passes = {key: 0 for key in CHECKS}
    for m in MASTER_SEEDS:
        cells, checks = build("quick", master_seed=m)
        by_check = {c.key: c for c in checks}
        needed = {k for key in CHECKS for k in by_check[key].cells}
        rows = {c.key: run_cell(c) for c in cells if c.key in needed}
        for key in CHECKS:
            result = evaluate_check(by_check[key], rows, n_resamples=1000, seed=m)
            passes[key] += result["verdict"] == "PASS"
    assert all(n >= 19 for n in passes.values()), passes
