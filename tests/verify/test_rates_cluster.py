"""``verify rates --executor dask`` (verify/rates/cluster.py): the same rows as the local pool, on a
2-worker Dask ``LocalCluster`` or a cluster given by its scheduler address; the driver's per-cell locks;
a killed worker's cell rerun. Skipped when the ``cluster`` extra (dask[distributed]) is absent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from verify.rates import sweep  # noqa: E402
from verify.rates.store import ResultStore  # noqa: E402

from .rates_sweep_helpers import DELAY_ENV, LOG_ENV, logged_slow_cell, read_log, tiny_cells  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
#: what differs between two computations of one cell: when and where it ran, and how long it took
_RUN_FACTS = ("provenance", "wall_time")


def comparable(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k not in _RUN_FACTS}
    out["runs"] = [{k: v for k, v in r.items() if k != "wall_time"} for r in row["runs"]]
    return out


def rows_of(directory: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json")) if not p.name.startswith("_")
            and p.name not in ("verdicts.json", "theorems.json")}


def verify_rates(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "verify", "rates", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_quick_grid_on_a_two_worker_local_cluster_equals_the_local_pool_bit_for_bit(tmp_path):
    local, cluster = tmp_path / "local", tmp_path / "dask"
    a = verify_rates("--quick", "--algo", "sgd", "--jobs", "2", "--no-progress", "--allow-dirty", "--out", str(local))
    b = verify_rates("--quick", "--algo", "sgd", "--jobs", "2", "--no-progress", "--allow-dirty", "--executor", "dask",
                     "--out", str(cluster))
    assert a.returncode == 0, a.stderr[-3000:]
    assert b.returncode == 0, b.stderr[-3000:]
    assert "on a local Dask cluster of 2 worker(s)" in b.stdout
    rows_local, rows_dask = rows_of(local / "quick"), rows_of(cluster / "quick")
    assert len(rows_local) == 3 and rows_local.keys() == rows_dask.keys()
    for name in rows_local:
        assert rows_dask[name]["values"] == rows_local[name]["values"], name
        assert comparable(rows_dask[name]) == comparable(rows_local[name]), name
    # the verdict tables are computed from the rows, so they are the same too
    table = [line for line in a.stdout.splitlines() if line.startswith("sgd ")]
    assert table and table == [line for line in b.stdout.splitlines() if line.startswith("sgd ")]


def test_a_cluster_given_by_its_scheduler_address_computes_the_same_rows(tmp_path):
    from distributed import LocalCluster

    cells = tiny_cells(4)
    sweep.run_cells(cells, ResultStore(tmp_path / "local"), jobs=1, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        stats = sweep.run_cells(cells, ResultStore(tmp_path / "remote"), progress=False, executor="dask",
                                scheduler=cluster.scheduler_address)
        assert stats["cells_run"] == 4
        again = sweep.run_cells(cells, ResultStore(tmp_path / "remote"), progress=False, executor="dask",
                                scheduler=cluster.scheduler_address)
        assert again["cells_run"] == 0 and again["cells_cached"] == 4, "the cache is the same as the local pool's"
    local, remote = rows_of(tmp_path / "local"), rows_of(tmp_path / "remote")
    assert local.keys() == remote.keys() and len(local) == 4
    assert all(comparable(local[k]) == comparable(remote[k]) for k in local)


def test_a_cell_held_by_a_concurrent_sweep_is_waited_for_and_reused(tmp_path):
    """The driver takes each cell's lock before it submits the cell: a held cell is not computed; after its
    holder stores it and lets go, the sweep reuses the row."""
    cells = tiny_cells(3)
    store = ResultStore(tmp_path)
    log = tmp_path / "log"
    os.environ[LOG_ENV] = str(log)
    result = {}
    try:
        with store.cell_lock(cells[0].key, wait=False) as held:
            assert held
            thread = threading.Thread(target=lambda: result.update(sweep.run_cells(
                cells, store, jobs=2, progress=False, executor="dask", compute=logged_slow_cell)))
            thread.start()
            for _ in range(600):  # the sweep computes the other two, then waits for this lock
                if len([k for e, k, _ in read_log(log) if e == "done"]) == 2:
                    break
                thread.join(timeout=0.1)
            thread.join(timeout=1.0)
            assert thread.is_alive(), "the sweep waits for the held cell"
            store.save(sweep._compute_row(cells[0]))
        thread.join(timeout=60)
        assert not thread.is_alive()
    finally:
        os.environ.pop(LOG_ENV, None)
    assert result["cells_run"] == 2 and result["cells_reused"] == 1
    assert sorted(k for e, k, _ in read_log(log) if e == "done") == [c.key for c in cells[1:]]
    assert store.missing(cells) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no lock file left behind"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kills a worker by its pid")
def test_a_killed_worker_has_its_cell_rerun_and_the_sweep_completes(tmp_path):
    cells = tiny_cells(3)
    log = tmp_path / "log"
    os.environ[LOG_ENV], os.environ[DELAY_ENV] = str(log), "1.5"
    try:
        done = {}
        thread = threading.Thread(target=lambda: done.update(sweep.run_cells(
            cells, ResultStore(tmp_path / "rows"), jobs=2, progress=False, executor="dask", compute=logged_slow_cell)))
        thread.start()
        first = None
        for _ in range(600):
            first = next(((k, p) for e, k, p in read_log(log) if e == "start"), None)
            if first:
                break
            thread.join(timeout=0.1)
        assert first, "a cell started"
        os.kill(first[1], signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive()
    finally:
        os.environ.pop(LOG_ENV, None)
        os.environ.pop(DELAY_ENV, None)
    assert done["cells_run"] == 3
    assert sum(1 for e, k, _ in read_log(log) if e == "start" and k == first[0]) == 2, "the killed cell ran again"
    assert sorted(k for e, k, _ in read_log(log) if e == "done") == sorted(c.key for c in cells)
    assert ResultStore(tmp_path / "rows").missing(cells) == []


def test_scheduler_without_the_dask_executor_is_refused(tmp_path):
    out = verify_rates("--quick", "--algo", "sgd", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path), timeout=60)
    assert out.returncode == 2 and "--scheduler needs --executor dask" in out.stderr
    with pytest.raises(ValueError, match="executor must be one of"):
        sweep.run_cells(tiny_cells(1), ResultStore(tmp_path), executor="ray")
