"""verify/methods: each family declares its formulas, theorems, rate entries, mutants and identity checks in one
module, and the engines collect them from there (reading a registry loads every family module)."""

from __future__ import annotations

import pytest

import algorithms
from verify import methods
from verify.memory.formulas import ALGORITHM_DEFAULTS, FORMULAS
from verify.rates import cells
from verify.rates.mutants import MUTANTS, mutants_of
from verify.rates.theorems import THEOREMS
from verify.suite import load_checks


def declared_in(registry_items) -> set[str]:
    return {getattr(item, "__module__", "") for item in registry_items}


def test_every_registered_optimizer_is_verified_by_its_family_module():
    modules = {m.__name__ for m in methods.load()}
    assert modules == {f"verify.methods.{name}" for name in ("baselines", "galore_fira", "ldadam_adarankgrad", "mars",
                                                             "sn_sm")}
    grid_cells, grid_checks = cells.build("quick")
    checked = cells.algorithms_covered(grid_checks)
    theorem_algorithms = {a for th in THEOREMS.values() for a in th.algorithms}
    for name in algorithms.REGISTRY:
        assert name in FORMULAS and name in ALGORITHM_DEFAULTS, name
        assert FORMULAS[name].__module__ in modules, name
        assert name in checked and name in theorem_algorithms, name
        assert mutants_of(name), name  # at least the generic planted bug
    identity_modules = {c.fn.__module__ for c in load_checks()}
    assert modules <= identity_modules  # every family contributes identity checks to verify check


def test_rate_entries_are_ordered_by_figure_then_position(monkeypatch):
    """A new method's entry needs no engine edit: it lands in its figure at its position."""
    entries = dict(cells.RATE_ENTRIES.items())
    seen = []
    monkeypatch.setattr(cells.RATE_ENTRIES, "_items", {
        "code_paths/5": cells.RateEntry("code_paths", 5, lambda b: seen.append("code_paths/5")),
        "baselines/10": cells.RateEntry("baselines", 10, lambda b: seen.append("baselines/10")),
        "baselines/1": cells.RateEntry("baselines", 1, lambda b: seen.append("baselines/1")),
    })
    assert cells.build("quick") == ([], [])
    assert seen == ["baselines/1", "baselines/10", "code_paths/5"]
    assert entries  # the real entries were there
    with pytest.raises(ValueError, match="figure"):
        cells.rate_entry("no_such_figure", 1)


def test_registries_refuse_a_second_declaration_of_a_name():
    existing = next(iter(THEOREMS.values()))
    with pytest.raises(ValueError, match="duplicate theorem"):
        THEOREMS.add(existing.key, object())
    with pytest.raises(ValueError, match="duplicate mutant"):
        MUTANTS.add("sgd_double_step", object())
    THEOREMS.add(existing.key, existing)  # the same object again is harmless (a module imported twice)
