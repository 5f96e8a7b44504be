"""Cells, their execution, the cached/resumable store and the sweep (verify/rates/{spec,execute,store,sweep}.py)."""

import json
from dataclasses import replace

import numpy as np
import pytest

import algorithms
from verify.rates import sweep
from verify.rates.execute import horizon_hyper, run_cell, with_lr_schedule
from verify.rates.problems import build_problem, noise_constants
from verify.rates.progress import ProgressBar, format_seconds
from verify.rates.spec import SEED_STRIDE, Cell, Check
from verify.rates.store import ResultStore, provenance

P1 = ("separable", {"d": 4})
NOISE = ("isotropic", {"level": 0.5})


def tiny(key="t/adagrad", algorithm="adagrad_norm", schedule=None, horizons=(8, 16, 32), seeds=4, **kw):
    return Cell(key=key, algorithm=algorithm, hyper=kw.pop("hyper", {"b0": 1.0, "eps": 0.0}), problem=P1,
                noise=kw.pop("noise", NOISE), schedule=schedule or {"kind": "constant", "eta": 0.5}, horizons=horizons,
                seeds=seeds, **kw)


# ----------------------------------------------------------------------------- spec
@pytest.mark.parametrize(
    "changes, match",
    [
        ({"key": "bad key"}, "key"),
        ({"key": "a:b"}, "key"),
        ({"schedule": {"kind": "cosine"}}, "schedule"),
        ({"horizons": (8,)}, "horizons"),
        ({"horizons": (16, 8)}, "horizons"),
        ({"seeds": 1}, "seeds"),
        ({"metrics": ("avg_loss",)}, "metric"),
        ({"metrics": ("avg_l21_sq",)}, "l21_subset"),
    ],
)
def test_cell_validation_names_the_field(changes, match):
    with pytest.raises(ValueError, match=match):
        replace(tiny(), **changes)


def test_check_validation():
    with pytest.raises(ValueError, match="kind"):
        Check(key="k", algorithm="a", theorem="gd_descent", kind="curve", cells=("c",), high=0.0)
    with pytest.raises(ValueError, match="target"):
        Check(key="k", algorithm="a", theorem="gd_descent", kind="slope", cells=("c",))
    with pytest.raises(ValueError, match="2 cell"):
        Check(key="k", algorithm="a", theorem="gd_descent", kind="gap", cells=("c",), low=-1.0, high=0.0)
    with pytest.raises(ValueError, match="one_sided"):
        Check(key="k", algorithm="a", theorem="gd_descent", kind="slope", cells=("c",), high=0.0)
    Check(key="k", algorithm="a", theorem="gd_descent", kind="slope", cells=("c",), high=0.0, one_sided="an upper bound")
    with pytest.raises(ValueError, match="no_schedule_power"):
        Check(key="k", algorithm="a", theorem="gd_descent", kind="slope", cells=("c",), low=-1.0, high=0.0,
              resolution=None)
    with pytest.raises(TypeError, match="tuple"):
        Check(key="k", algorithm="a", theorem="gd_descent", kind="slope", cells=("c",), low=-1.0, high=0.0,
              mutants="sgd_double_step")
    with pytest.raises(ValueError, match="tune_groups"):
        Check(key="k", algorithm="a", theorem="gd_descent", kind="order", cells=("a", "b", "c"), high=0.0,
              tune_groups=(1, 1))


def test_digest_keys_the_result_not_the_presentation():
    cell = tiny()
    assert replace(cell, label="another label", figure="f").digest() == cell.digest()
    assert replace(cell, hyper={"b0": 2.0, "eps": 0.0}).digest() != cell.digest()
    assert cell.with_master_seed(3).digest() != cell.digest()
    assert cell.with_master_seed(3).seed_ids() == [3 * SEED_STRIDE + i for i in range(4)]


# ----------------------------------------------------------------------------- execution
def test_run_cell_row_layout():
    row = run_cell(tiny(metrics=("avg_sq_grad", "min_sq_grad", "avg_l1_sq", "avg_l21_sq"), l21_subset=2))
    assert row["horizons"] == [8, 16, 32]
    assert row["seeds"] == [0, 1, 2, 3]
    for metric in ("avg_sq_grad", "min_sq_grad", "avg_l1_sq", "avg_l21_sq"):
        values = np.asarray(row["values"][metric])
        assert values.shape == (3, 4) and np.all(values > 0)
    v = {m: np.asarray(row["values"][m]) for m in row["values"]}
    assert np.all(v["min_sq_grad"] <= v["avg_sq_grad"])
    # ||g||_2 <= ||g||_{2,1} <= ||g||_1 for every vector, hence for the averages of the squares
    assert np.all(v["avg_sq_grad"] <= v["avg_l21_sq"] * (1 + 1e-12))
    assert np.all(v["avg_l21_sq"] <= v["avg_l1_sq"] * (1 + 1e-12))
    assert row["constants"]["variance"] == pytest.approx(0.25)
    assert row["spec"]["algorithm"] == "adagrad_norm" and row["digest"] == tiny(
        metrics=("avg_sq_grad", "min_sq_grad", "avg_l1_sq", "avg_l21_sq"), l21_subset=2).digest()


def test_anytime_horizons_are_prefixes_of_the_same_trajectories():
    a = run_cell(tiny(horizons=(8, 16)))
    b = run_cell(tiny(horizons=(16, 32)))
    assert a["values"]["avg_sq_grad"][1] == b["values"]["avg_sq_grad"][0]


def test_fixed_horizon_cells_run_once_per_horizon_with_eta0_over_sqrt_T():
    cell = tiny(algorithm="sgd", hyper={}, schedule={"kind": "inverse_sqrt_horizon", "eta0": 2.0}, horizons=(4, 16))
    row = run_cell(cell)
    assert [r["T"] for r in row["runs"]] == [4, 16]
    problem = build_problem(*cell.problem)
    assert horizon_hyper(cell, problem, 16)["lr"] == pytest.approx(0.5)
    beta = replace(cell, algorithm="adam", schedule={"kind": "inverse_sqrt_horizon", "eta0": 1.0, "beta2_horizon": True})
    assert horizon_hyper(beta, problem, 100)["betas"] == (0.9, 0.99)


def test_paired_cells_see_the_same_noise():
    a = run_cell(tiny(key="t/a"))
    b = run_cell(tiny(key="t/b", hyper={"b0": 1.0, "eps": 0.0}))
    assert a["values"] == b["values"]


def test_noise_constants():
    c = noise_constants("isotropic", {"level": 2.0}, (4,), subset_size=2)
    assert c["variance"] == pytest.approx(4.0) and c["sigma_l2"] == pytest.approx(2.0)
    assert c["sigma_l1"] == pytest.approx(4.0) and c["sigma_21"] == pytest.approx(2 * 2**0.5)
    rows = noise_constants("rows", {"level": 1.0, "rows": 2}, (4, 8))
    assert rows["variance"] == pytest.approx(1.0)
    heavy = noise_constants("student_t", {"level": 1.0}, (4,))
    assert heavy["sub_gaussian"] is False
    with pytest.raises(ValueError, match="rows"):
        noise_constants("rows", {"level": 1.0, "rows": 9}, (4, 8))
    with pytest.raises(ValueError, match="noise family"):
        noise_constants("pink", {}, (4,))


def test_running_mutant_and_scheduled_cells_leaves_the_registry_untouched():
    before = dict(algorithms.REGISTRY)
    cell = Cell(key="t/mutant", algorithm="mutant:mars_exact_aliased",
                hyper={"estimator": "exact", "bias_correction": False}, problem=("separable", {"d": 4}),
                noise=("none", {}), schedule={"kind": "mars_theory", "eta0": 0.5, "s": 8.0, "c": 1.0, "beta2": 0.99},
                horizons=(2, 4), seeds=2)
    run_cell(cell)
    assert algorithms.REGISTRY == before


def test_lr_schedule_wrapper_sets_eta_t_before_each_step():
    import torch

    seen = []
    cls = with_lr_schedule(algorithms.REGISTRY["sgd"], lambda t: 1.0 / t)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = cls([p], lr=123.0)
    for _ in range(3):
        p.grad = torch.ones_like(p)
        opt.step()
        seen.append(opt.param_groups[0]["lr"])
    assert seen == [1.0, 0.5, pytest.approx(1 / 3)]
    assert torch.allclose(p.detach(), torch.full((3,), -(1 + 0.5 + 1 / 3), dtype=torch.float64))


# ----------------------------------------------------------------------------- store
def test_store_roundtrip_and_invalidation(tmp_path):
    store = ResultStore(tmp_path)
    cell = tiny()
    assert store.load(cell) is None
    path = store.save(run_cell(cell))
    assert path.name == "t__adagrad.json"
    row = store.load(cell)
    assert row["provenance"]["versions"]["torch"]
    assert store.load(replace(cell, seeds=5)) is None  # another spec: stale
    path.write_text('{"key": "t/adagrad", "dig')  # a torn write
    assert store.load(cell) is None
    assert not list(tmp_path.glob(".tmp-*"))


def test_provenance_records_the_commit_and_versions():
    p = provenance()
    assert set(p["versions"]) >= {"python", "torch", "numpy", "scipy", "sympy"}
    assert "git_commit" in p and "created_utc" in p


def test_sweep_is_resumable(tmp_path, monkeypatch):
    cells = [tiny(key=f"t/c{i}", hyper={"b0": 1.0 + i, "eps": 0.0}) for i in range(3)]
    store = ResultStore(tmp_path)
    real = sweep._work
    calls = []

    def dies_after_one(cell, directory, **kw):
        if calls:
            raise KeyboardInterrupt  # the sweep is killed while the second cell runs
        calls.append(cell.key)
        return real(cell, directory, **kw)

    monkeypatch.setattr(sweep, "_work", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_cells(cells, store, jobs=1, progress=False)
    assert len(store.missing(cells)) == 2
    monkeypatch.setattr(sweep, "_work", real)
    stats = sweep.run_cells(cells, store, jobs=1, progress=False)
    assert stats["cells_run"] == 2 and stats["cells_cached"] == 1
    assert sweep.run_cells(cells, store, jobs=1, progress=False)["cells_run"] == 0
    assert sweep.run_cells(cells, store, jobs=1, progress=False, force=True)["cells_run"] == 3


def test_progress_bar_lines(tmp_path):
    import io

    out = io.StringIO()
    bar = ProgressBar(4, total_cost=10.0, stream=out)
    bar.update(cost=5.0, note="cell-a")
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[" + "." * 28 + "] 0/4 cells")
    assert "1/4 cells" in lines[1] and "ETA" in lines[1] and lines[1].endswith("cell-a")
    assert format_seconds(59) == "59s" and format_seconds(61) == "1m01s" and format_seconds(7200) == "2h00m"


def test_mutant_cells_substitute_only_the_base_algorithm():
    from verify.rates.cells import build

    cells, checks = build("quick")
    mc, mk = sweep.mutant_cells(cells, checks, "mars_exact_aliased")
    keys = {c.key for c in mc}
    assert "mars_adamw/p1-exact-g1@mars_exact_aliased" in keys
    assert "sgdm/p1-mars-schedule" in keys  # a comparison partner of another algorithm stays as it is
    assert all(c.algorithm == "mutant:mars_exact_aliased" for c in mc if "@" in c.key)
    assert {ch.key for ch in mk} >= {"mars_adamw/gamma-gap@mars_exact_aliased"}
    with pytest.raises(ValueError, match="mutant"):
        sweep.mutant_cells(cells, checks, "nope")


def test_row_json_has_no_numpy_types(tmp_path):
    row = run_cell(tiny())
    json.dumps(row)
