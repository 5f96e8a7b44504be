"""Every rate check FAILS on its planted bug and passes on the real code.

Fast tier: a representative check per mechanism on a shrunk version of its quick-grid cells (fewer
seeds, shorter horizons), the correct algorithm and the mutant on the *same* shrunk grid.
Slow tier (``-m slow``): every check of the quick grid against its declared mutant, on the quick grid
itself (what ``verify rates --quick --mutant NAME`` runs).
"""

from dataclasses import replace

import pytest

import algorithms
from verify.rates.cells import build
from verify.rates.checks import evaluate_alternative, evaluate_check
from verify.rates.execute import run_cell
from verify.rates.mutants import INVISIBLE, MUTANTS
from verify.rates.sweep import mutant_for_check

CELLS, CHECKS = build("quick")
BY_CHECK = {c.key: c for c in CHECKS}

GOOD = {"PASS", "CONSISTENT"}
BAD = {"FAIL", "INCONSISTENT"}


def shrink(check_key, horizons, seeds, window):
    """The check and its cells (correct, then with the declared mutant) on a reduced grid."""
    check = replace(BY_CHECK[check_key], window=window)
    m_cells, m_check = mutant_for_check(CELLS, CHECKS, check_key)
    m_check = replace(m_check, window=window)

    def small(cell):
        return replace(cell, horizons=horizons, seeds=min(cell.seeds, seeds))

    correct = [small(c) for c in CELLS if c.key in check.cells]
    mutated = [small(c) for c in m_cells]
    return check, correct, m_check, mutated


def evaluate(check, cells):
    rows = {c.key: run_cell(c) for c in cells}
    return evaluate_check(check, rows, n_resamples=300)


FAST = [
    # check, horizons, seeds, window
    # (sgd/gd-bound, sgd/gd-slope and adagrad_norm/noisy-slope: through the suite checks below)
    ("adam/slope", tuple(2**k for k in range(8, 11)), 32, (2**8, 2**10)),
    ("sgd/bound", (2**8, 2**9), 4, (2**8, 2**9)),
    ("subspace_momentum/vs-sgd", (2**8, 2**9), 4, (2**8, 2**9)),
    ("adagrad_coordinate/noisy-slope", tuple(2**k for k in range(7, 11)), 32, (2**7, 2**10)),
    ("sgdm/slope", (2**8, 2**9, 2**10), 8, (2**8, 2**10)),
]


@pytest.mark.parametrize("key, horizons, seeds, window", FAST, ids=[f[0] for f in FAST])
def test_check_passes_the_real_code_and_fails_its_mutant(key, horizons, seeds, window):
    check, correct, m_check, mutated = shrink(key, horizons, seeds, window)
    good = evaluate(check, correct)
    bad = evaluate(m_check, mutated)
    assert good["verdict"] in GOOD, good["reason"]
    assert bad["verdict"] in BAD, bad["reason"]


def test_every_declared_mutant_exists_and_touches_its_check():
    for grid in ("quick", "full"):
        cells, checks = build(grid)
        for check in checks:
            for name in check.mutants:
                assert name in MUTANTS, (check.key, name)
                assert MUTANTS[name].base == check.algorithm, (check.key, name)
            if check.assess:
                assert check.mutants, check.key
                mutant_for_check(cells, checks, check.key)  # raises when the mutant does not touch the check's cells


def test_mutants_are_not_left_in_the_registry():
    assert not [name for name in algorithms.REGISTRY if name.startswith(("mutant:", "rates["))]
    for m in MUTANTS.values():
        if m.cls is not None:
            assert m.cls not in algorithms.REGISTRY.values(), m.name


@pytest.mark.parametrize("fn, mutant", [("gd_descent", "mutant:sgd_double_step"),
                                        ("adagrad_norm_noise_adaptation", "mutant:adagrad_norm_not_accumulated")])
def test_suite_checks_pass_and_fail_their_mutant(fn, mutant):
    from verify.checks import rates as suite_rates

    check_fn = getattr(suite_rates, fn)
    outcome = check_fn(True)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert passed, detail
    outcome = check_fn(True, algorithm=mutant)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


def test_invisible_bugs_are_documented_with_a_reason():
    assert INVISIBLE and all(len(reason) > 40 for reason in INVISIBLE.values())


@pytest.mark.slow
@pytest.mark.parametrize("key", [c.key for c in CHECKS])
def test_every_quick_grid_check_fails_its_mutant(key, tmp_path_factory):
    check = BY_CHECK[key]
    if not check.mutants:
        pytest.skip("a measurement: no planted bug declared")
    m_cells, m_check = mutant_for_check(CELLS, CHECKS, key)
    rows = {c.key: run_cell(c) for c in m_cells}
    bad = evaluate_alternative(m_check, rows, n_resamples=1000)  # as the power run judges it: the statistic alone
    assert bad["outcome"] == "FAIL", bad["reason"]
