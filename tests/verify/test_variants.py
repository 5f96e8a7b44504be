"""verify/variants.py: both variants on identical gradients; the step where they part and by how much."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paper_checks import _results
from verify import variants
from verify.cli import main
from verify.variants import Comparison, run_comparison

COMMITTED = Path(__file__).resolve().parents[2] / "results" / "variants" / "variants.json"


@pytest.fixture(scope="module")
def fresh():
    return {row["key"]: row for row in variants.run_all()}


def test_keys_are_unique_and_name_registered_optimizers():
    import algorithms

    keys = [c.key for c in variants.COMPARISONS]
    assert len(keys) == len(set(keys))
    for c in variants.COMPARISONS:
        assert c.algorithm in algorithms.REGISTRY and (c.candidate_algorithm or c.algorithm) in algorithms.REGISTRY
        assert c.kind in ("difference", "identity", "construction")


def test_every_control_agrees_exactly(fresh):
    for key, row in fresh.items():
        if row["kind"] != "construction":
            assert row["control_max_error"] == 0.0, key


def test_the_committed_results_are_what_the_engine_gives(fresh):
    """The structural facts of the committed file hold for a fresh run: which side refuses a setting, the
    step where two sides clearly part (the first difference above 1e-7), which parameters differ by more
    than 1e-6 and which not at all. Differences at float32 round-off (1e-10 to 1e-7) depend on the
    platform's LAPACK and are not compared."""
    committed = {r["key"]: r for r in json.loads(COMMITTED.read_text())["results"]}
    assert set(committed) == set(fresh)
    for key, new in fresh.items():
        old = committed[key]
        if new["kind"] == "construction":
            assert (bool(old["reference_error"]), bool(old["candidate_error"])) == \
                (bool(new["reference_error"]), bool(new["candidate_error"])), key
            continue
        if (old["error_at_parting"] or 0) > 1e-7:
            assert new["first_parting_step"] == old["first_parting_step"], key
        for name, worst in old["max_error_per_param"].items():
            if worst > 1e-6:
                assert new["max_error_per_param"][name] > 1e-7, (key, name)
            elif worst == 0:
                assert new["max_error_per_param"][name] == 0, (key, name)


def test_a_planted_difference_parts_where_it_acts_and_an_equal_pair_never_parts():
    half_lr = run_comparison(Comparison("x/lr", "adam", "lr", {"lr": 1e-3}, {"lr": 5e-4}, steps=4))
    assert half_lr["first_parting_step"] == 1 and half_lr["max_error"] > 1e-5
    assert set(half_lr["first_parting_step_per_param"].values()) == {1}
    same = run_comparison(Comparison("x/same", "adam", "nothing", {"lr": 1e-3}, {"lr": 1e-3}, steps=4))
    assert same["first_parting_step"] is None and same["max_error"] == 0.0


def test_a_difference_that_acts_late_is_found_late():
    # the stale-basis refresh acts at the first refresh after step 1 (step 5 at gap 5), not before
    late = run_comparison(Comparison("x/refresh", "subspace_momentum", "refresh", {"refresh": "reset"},
                                     {"refresh": "official"}, {"update_proj_gap": 5}, steps=7))
    assert late["first_parting_step"] == 5


def test_construction_records_which_side_refuses():
    row = run_comparison(Comparison("x/rank", "galore_adamw", "rank", {"variant": "paper", "rank": 99},
                                    {"variant": "official", "rank": 99}, kind="construction"))
    assert row["reference_error"].startswith("ValueError") and row["candidate_error"] is None
    both = run_comparison(Comparison("x/rank-ok", "galore_adamw", "rank", {"variant": "paper", "rank": 2},
                                     {"variant": "official", "rank": 2}, kind="construction"))
    assert both["reference_error"] is None and both["candidate_error"] is None


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="unknown comparison"):
        variants.run_all(["no/such"])


def test_cli_only_prints_and_refresh_writes(tmp_path, monkeypatch, capsys):
    assert variants.main(["--only", "mars_shampoo/shape_factor"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["first_parting_step_per_param"]["tall"] == 1
    monkeypatch.setattr(_results, "RESULTS", tmp_path)
    (tmp_path / "variants").mkdir()
    assert main(["report", "--refresh-variants", "--out", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "variants" / "variants.json").read_text())
    assert data["meta"]["part_tolerance"] == variants.PART_TOLERANCE and len(data["results"]) == len(variants.COMPARISONS)
