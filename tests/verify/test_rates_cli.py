"""``verify rates`` and ``verify figures`` end to end on a tiny grid (the real grids are run by the CLI, not tests)."""

import json

import pytest

from verify import cli
from verify.rates import cells as grid_module
from verify.rates.spec import Cell, Check

P1 = ("separable", {"d": 4})


def tiny_grid(grid="quick", master_seed=0):
    common = dict(problem=P1, noise=("isotropic", {"level": 0.5}), horizons=(16, 32, 64, 128), seeds=6,
                  master_seed=master_seed, figure="tiny")
    cells = [
        Cell(key="tiny/sgd", algorithm="sgd", hyper={}, schedule={"kind": "inverse_sqrt_horizon", "eta0": 2.0}, **common),
        Cell(key="tiny/gd", algorithm="sgd", hyper={}, schedule={"kind": "one_over_L"},
             **{**common, "noise": ("none", {}), "seeds": 2}),
    ]
    checks = [
        Check(key="tiny/sgd-bound", algorithm="sgd", theorem="sgd_horizon", kind="bound", cells=("tiny/sgd",),
              claim="under the explicit bound", figure="tiny", mutants=("sgd_stale_gradient_sum",), resolution=None,
              no_schedule_power="an explicit constant"),
        Check(key="tiny/gd-slope", algorithm="sgd", theorem="gd_descent", kind="slope", cells=("tiny/gd",),
              low=-1.1, high=-0.9, figure="tiny", mutants=("sgd_double_step",)),
        Check(key="tiny/sgd-measured", algorithm="sgd", theorem="sgd_horizon", kind="slope", cells=("tiny/sgd",),
              low=-10.0, high=10.0, max_width=None, assess=False, resolution=None, no_schedule_power="measured"),
        Check(key="tiny/impossible", algorithm="adam", theorem="gd_descent", kind="slope", cells=("tiny/gd",),
              low=0.5, high=0.6, resolution=None, no_schedule_power="a test"),
    ]
    return cells, checks


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(grid_module, "build", tiny_grid)


def test_list_needs_no_run(capsys):
    assert cli.main(["rates", "--quick", "--list"]) == 0
    out = capsys.readouterr().out
    assert "adagrad_norm/p1" in out and "mars_adamw/gamma-gap" in out


def test_unknown_algorithm_is_a_clear_error(capsys):
    assert cli.main(["rates", "--quick", "--algo", "nope", "--list"]) == 2
    assert "no checks" in capsys.readouterr().err


def test_run_cache_verdicts_and_figures(tiny, tmp_path, capsys):
    out_root = tmp_path / "results" / "rates"
    args = ["rates", "--quick", "--out", str(out_root), "--jobs", "1", "--no-progress", "--resamples", "200", "--allow-dirty"]
    assert cli.main(args + ["--algo", "sgd"]) == 0  # the asserted impossible check belongs to "adam"
    first = capsys.readouterr().out
    assert "2 cell(s) run" in first and "tiny/sgd-bound" in first and "PASS" in first
    assert cli.main(args) == 1  # now with the impossible asserted check: FAIL -> exit status 1
    second = capsys.readouterr().out
    assert "0 cell(s) run, 2 cached" in second and "FAIL" in second
    verdicts = json.loads((out_root / "quick" / "verdicts.json").read_text())
    by_key = {r["key"]: r for r in verdicts["results"]}
    assert by_key["tiny/gd-slope"]["verdict"] == "PASS"
    assert by_key["tiny/impossible"]["verdict"] == "FAIL"
    assert verdicts["summary"]["asserted"]["FAIL"] == 1
    assert (out_root / "quick" / "verdicts.md").read_text().count("| sgd |") == 3
    assert (out_root / "quick" / "theorems.json").exists()
    assert cli.main(["figures", "--root", str(tmp_path), "--only", "rates"]) == 0
    png = out_root / "quick" / "figures" / "tiny.png"
    assert png.exists() and png.stat().st_size > 1000


def test_figures_list_and_unknown(capsys):
    assert cli.main(["figures", "--list"]) == 0
    assert "rates" in capsys.readouterr().out
    assert cli.main(["figures", "--only", "nope"]) == 2


def test_figures_skip_missing_results(tmp_path, capsys):
    assert cli.main(["figures", "--root", str(tmp_path), "--only", "rates"]) == 0
    assert "skip" in capsys.readouterr().out


def test_power_runs_the_alternatives_and_gates_on_them(tiny, tmp_path, capsys):
    out_root = tmp_path / "rates"
    args = ["rates", "--quick", "--out", str(out_root), "--jobs", "1", "--no-progress", "--resamples", "200", "--allow-dirty",
            "--algo", "sgd", "--power"]
    assert cli.main(args) == 0
    capsys.readouterr()
    stored = {p.name for p in (out_root / "quick").glob("*.json")}
    # GD's schedule alternatives (p = ±0.15, ±0.3 around the constant step) and its planted bug were run
    assert {"tiny__gd@p+0.150.json", "tiny__gd@p-0.300.json", "tiny__gd@mutant-sgd_double_step.json"} <= stored
    assert "tiny__sgd@mutant-sgd_stale_gradient_sum.json" in stored
    rerun = cli.main(["rates", "--quick", "--out", str(out_root), "--jobs", "1", "--no-progress", "--resamples", "200", "--allow-dirty",
                      "--algo", "sgd", "--no-run"])
    assert rerun == 0
    out = capsys.readouterr().out
    assert "tiny/gd-slope" in out


def _clean_provenance(directory):
    for path in directory.glob("*.json"):
        row = json.loads(path.read_text())
        if "provenance" in row:
            row["provenance"].update(git_commit="0" * 40, git_dirty=False)
            path.write_text(json.dumps(row))


def test_regression_fails_on_a_planted_change_of_a_reported_number(tiny, tmp_path, capsys, monkeypatch):
    import algorithms

    base_root, fresh = tmp_path / "base", tmp_path / "fresh"
    common = ["rates", "--quick", "--jobs", "1", "--no-progress", "--resamples", "200", "--allow-dirty", "--algo", "sgd"]
    assert cli.main(common + ["--out", str(base_root)]) == 0
    # --algo writes no verdicts; the baseline needs them: evaluate the whole tiny grid once (its FAIL is expected)
    assert cli.main(["rates", "--quick", "--jobs", "1", "--no-progress", "--resamples", "200", "--allow-dirty", "--out", str(base_root)]) == 1
    _clean_provenance(base_root / "quick")
    whole = ["rates", "--quick", "--jobs", "1", "--no-progress", "--resamples", "200", "--allow-dirty", "--regression",
             "--baseline", str(base_root)]
    assert cli.main(whole + ["--out", str(fresh / "same")]) == 1  # the impossible check FAILs, as in the baseline
    out = capsys.readouterr().out
    assert "regression against" in out and ": PASS" in out and "  moved:" not in out

    sgd = algorithms.REGISTRY["sgd"]
    original = sgd._update_param

    def half_step(self, p, grad, state, group):  # a planted change: every SGD step is halved
        original(self, p, 0.5 * grad, state, group)

    monkeypatch.setattr(sgd, "_update_param", half_step)
    assert cli.main(whole + ["--out", str(fresh / "planted")]) == 1
    out = capsys.readouterr().out
    assert ": FAIL" in out and "moved: cell tiny/sgd" in out and "tiny/sgd-measured" in out


def test_regression_with_no_baseline_fails(tiny, tmp_path, capsys):
    args = ["rates", "--quick", "--jobs", "1", "--no-progress", "--resamples", "200", "--allow-dirty", "--algo", "sgd", "--regression",
            "--baseline", str(tmp_path / "nothing"), "--out", str(tmp_path / "fresh")]
    assert cli.main(args) == 1
    assert "no baseline" in capsys.readouterr().out


def test_rows_from_a_dirty_tree_are_refused_unless_allow_dirty(tiny, tmp_path, capsys, monkeypatch):
    """Computing rows from code that differs from its commit, or judging rows computed so, exits 2 before any
    work; --allow-dirty runs, and the rows record git_dirty so they never serve as a regression baseline."""
    from verify.rates import store

    dirty = {"git_commit": "a" * 40, "git_dirty": True, "git_dirty_paths": ["algorithms/sgd.py"]}
    clean = {"git_commit": "a" * 40, "git_dirty": False, "git_dirty_paths": []}
    monkeypatch.setattr(store, "_git_state", lambda: dirty)
    args = ["rates", "--quick", "--out", str(tmp_path), "--jobs", "1", "--no-progress", "--resamples", "200",
            "--algo", "sgd"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "refusing" in err and "algorithms/sgd.py" in err and "--allow-dirty" in err
    assert not list((tmp_path / "quick").glob("*.json"))  # nothing was computed
    assert cli.main(args + ["--allow-dirty"]) == 0
    rows = [json.loads(p.read_text()) for p in (tmp_path / "quick").glob("tiny__*.json")]
    assert rows and all(r["provenance"]["git_dirty"] is True for r in rows)
    monkeypatch.setattr(store, "_git_state", lambda: clean)
    assert cli.main(args + ["--no-run"]) == 2  # judging the dirty rows is refused too
    assert "stored row(s) were computed from a dirty tree" in capsys.readouterr().err
    assert cli.main(args) == 2  # reusing them is refused as well
    assert cli.main(args + ["--force"]) == 0  # recomputing every row from a clean tree replaces them
    assert cli.main(args + ["--no-run"]) == 0
