"""Concurrent sweeps and killed processes (verify/rates/sweep.py, verify/rates/store.py).

Each test starts real sweeps as subprocesses (``python -m tests.verify.rates_sweep_helpers``) on
tiny cells whose computation is logged and slowed down (``OPTVERIFY_TEST_CELL_DELAY``), so that
processes can be killed while cells are in flight; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from verify.rates.store import ResultStore

from .rates_sweep_helpers import DELAY_ENV, LOG_ENV, read_log, tiny_cells

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def start_sweep(directory, log, n_cells, jobs, delay, **popen):
    env = {**os.environ, DELAY_ENV: str(delay), LOG_ENV: str(log), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.verify.rates_sweep_helpers", str(directory), str(log),
                             str(n_cells), str(jobs)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def finish(proc, timeout=120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def done_counts(log) -> Counter:
    return Counter(key for event, key, _ in read_log(log) if event == "done")


def test_two_concurrent_sweeps_share_the_cells(tmp_path):
    """Two sweeps into one folder at once: every cell computed exactly once, both see every row."""
    out, log, n = tmp_path / "rows", tmp_path / "log", 6
    sweeps = [start_sweep(out, log, n, jobs=1, delay=0.4) for _ in range(2)]
    stats = [finish(p) for p in sweeps]
    assert done_counts(log) == Counter({c.key: 1 for c in tiny_cells(n)})
    assert sum(s["cells_run"] for s in stats) == n
    assert all(s["cells_run"] + s["cells_cached"] == n for s in stats)
    assert min(s["cells_run"] for s in stats) >= 1, "both sweeps computed: they really ran at the same time"
    store = ResultStore(out)
    assert store.missing(tiny_cells(n)) == []
    assert sorted(p.name for p in out.iterdir()) == sorted(store.path(c.key).name for c in tiny_cells(n)), \
        "no lock or temporary file is left behind"


def test_rows_are_readable_by_the_group(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    store = ResultStore(tmp_path)
    path = store.save({"key": "t/mode", "digest": "x", "values": {}, "provenance": {}})
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_held_cell_is_waited_for_and_reused(tmp_path):
    """A sweep that finds a cell locked computes the others, then waits and reuses the stored row."""
    from verify.rates import sweep

    cells = tiny_cells(3)
    store = ResultStore(tmp_path)
    calls = []

    def compute(cell):
        calls.append(cell.key)
        return sweep._compute_row(cell)

    with store.cell_lock(cells[0].key, wait=False) as held:
        assert held
        with store.cell_lock(cells[0].key, wait=False) as second:
            assert not second, "the lock is exclusive"
        # the holder finishes while the sweep waits: simulate by storing the row before releasing
        store.save(sweep._compute_row(cells[0]))
        busy = sweep._run_pass(cells, store, jobs=1, force=False, wait=False, compute=compute,
                               finished=lambda *a: None, stats={}, echo=print)
    assert [c.key for c in busy] == [cells[0].key] and calls == [c.key for c in cells[1:]]
    stats = sweep.run_cells(cells, store, jobs=1, progress=False, compute=compute)
    assert stats["cells_run"] == 0 and calls == [c.key for c in cells[1:]]


@linux_only
def test_kill_9_of_the_sweep_leaves_no_process_and_loses_no_finished_cell(tmp_path):
    out, log, n = tmp_path / "rows", tmp_path / "log", 4
    # first a sweep that finishes two cells, so that the killed one starts with finished rows
    finish(start_sweep(out, log, 2, jobs=1, delay=0))
    proc = start_sweep(out, log, n, jobs=2, delay=60, start_new_session=True)
    starts = wait_for(lambda: [(k, p) for e, k, p in read_log(log) if e == "start"] if
                      sum(e == "start" for e, _, _ in read_log(log)) >= 4 else None, 60, "two workers computing")
    workers = {p for k, p in starts if k in ("t/c2", "t/c3")}
    helpers = [c for c in children(proc.pid) if "resource_tracker" in cmdline(c)]
    try:
        assert len(workers) == 2 and all(alive(p) for p in workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        wait_for(lambda: not any(alive(p) for p in workers | set(helpers)), 10,
                 "the workers and the resource tracker to die")
    finally:  # never leave a process behind, even when the check fails
        for pid in workers | set(helpers):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert ResultStore(out).missing(tiny_cells(n)) == tiny_cells(n)[2:], "finished cells kept, nothing else written"
    stats = finish(start_sweep(out, log, n, jobs=1, delay=0))  # the stale locks do not block the rerun
    assert stats["cells_run"] == 2 and ResultStore(out).missing(tiny_cells(n)) == []
    assert done_counts(log) == Counter({c.key: 1 for c in tiny_cells(n)})
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "lock and temporary files cleaned up"


@linux_only
def test_kill_9_of_a_worker_recomputes_its_cell_and_the_sweep_completes(tmp_path):
    out, log, n = tmp_path / "rows", tmp_path / "log", 4
    proc = start_sweep(out, log, n, jobs=2, delay=1.0)
    first = wait_for(lambda: next(((k, p) for e, k, p in read_log(log) if e == "start"), None), 60, "a cell to start")
    os.kill(first[1], signal.SIGKILL)
    stats = finish(proc)
    assert stats["pool_restarts"] == 1 and stats["cells_run"] == n
    assert done_counts(log) == Counter({c.key: 1 for c in tiny_cells(n)}), "every cell finished exactly once"
    assert sum(1 for e, k, _ in read_log(log) if e == "start" and k == first[0]) == 2, "the killed cell ran again"
    assert ResultStore(out).missing(tiny_cells(n)) == []
