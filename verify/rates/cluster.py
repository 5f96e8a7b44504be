r"""Run the cells of a sweep as tasks on a Dask cluster (``verify rates --executor dask``).

**Why Dask (and not Ray).** A cell is an independent, CPU-bound Python function of a few seconds to
minutes whose input and output are small; what a sweep needs from an engine is a task queue, retries
when a worker dies, and deployment on the clusters researchers have. Dask's ``distributed`` is a
pure-Python wheel that starts a ``LocalCluster`` inside the calling process in about a second, and
the same client code talks to a scheduler on SLURM/PBS/SGE (``dask-jobqueue``) or Kubernetes
(``dask-kubernetes``). Ray brings a large binary wheel and its own daemons (GCS, raylet, object
store) for features a sweep does not use. Only one engine is supported, to keep one code path tested.

**Cells stay the unit, and the driver keeps the results folder.** Workers compute rows and return
them; the driver (the ``verify rates`` process) is the only process that touches the results folder:

* before a cell is submitted the driver takes its lock (:meth:`ResultStore.cell_lock`), checks the
  cache and only then submits it; when the row comes back it writes it atomically and releases the
  lock. A concurrent sweep into the same folder (local or on a cluster) therefore shares the cells
  exactly as two local sweeps do, a killed sweep keeps every row that came back, and workers need
  no access to the folder (no shared file system).
* a cell is the same function call whatever runs it (:func:`verify.rates.execute.run_cell`, one
  intra-op thread, the same allocator settings), so its row is bit-identical to the local pool's
  whatever the executor or the number of workers (tested).
* each row records the provenance of the worker that computed it (its commit, versions, platform);
  workers must run the same code as the driver for the rows to be the driver's grid (a cluster's
  workers normally import the same checkout or image).
* tasks are submitted most expensive first (Dask ``priority``); the progress bar is the local one.
* a worker that dies has its task rerun on another worker by the scheduler (up to Dask's
  ``distributed.scheduler.allowed-failures``, 3 by default); past that the sweep stops with an error
  (the finished cells are saved; rerun to resume).

**The default cluster** (no ``--scheduler``) is a ``LocalCluster`` of ``--jobs`` single-threaded worker
processes listening on the loopback interface, without a dashboard, whose workers die with the
sweep (``PR_SET_PDEATHSIG``, as the local pool's). With ``--scheduler ADDRESS`` the sweep connects to
an existing scheduler and leaves its workers alone (they belong to the cluster).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable, Iterator

from .spec import Cell
from .store import ResultStore

try:
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # the cluster extra is not installed: require_dask() says how to install it
    _WorkerPlugin = object

__all__ = ["EXECUTORS", "require_dask", "dask_client", "dask_pass", "SweepWorkerSetup"]

EXECUTORS = ("local", "dask")
_INSTALL_HINT = "install the cluster extra: pip install -e '.[cluster]' (dask[distributed])"


def require_dask() -> None:
    """Raise ``ImportError`` with the install command when ``distributed`` is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"--executor dask needs dask.distributed: {_INSTALL_HINT}") from exc


class SweepWorkerSetup(_WorkerPlugin):
    """A Dask worker plugin: the settings of a local pool worker (see :func:`verify.rates.sweep._init_worker`).

    ``driver_pid`` (only for the sweep's own ``LocalCluster``) makes the worker die with the sweep.
    """

    name = "optverify-rates-worker"

    def __init__(self, driver_pid: int | None = None) -> None:
        self.driver_pid = driver_pid

    def setup(self, worker=None) -> None:
        if self.driver_pid is not None:
            from .sweep import _die_with_parent

            _die_with_parent(self.driver_pid)
        _single_threaded_worker()


def _single_threaded_worker() -> None:
    import torch

    from synthetic.allocator import retain_unless_disabled

    torch.set_num_threads(1)
    retain_unless_disabled()


def compute_on_worker(cell: Cell, compute: Callable[[Cell], dict]) -> dict:
    """The task: one cell's row (the worker settings are applied again, so a worker that joined the
    cluster without the plugin computes identically). The row's provenance (commit, versions, platform)
    is the worker's: the code that computed it, not the driver's."""
    from .store import provenance

    _single_threaded_worker()
    row = compute(cell)
    row.setdefault("provenance", provenance())
    return row


@contextlib.contextmanager
def dask_client(scheduler: str | None, jobs: int) -> Iterator[object]:
    """A client of the cluster at ``scheduler``, or of a new ``LocalCluster`` of ``jobs`` workers."""
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.worker.daemon": True}):
        if scheduler:
            with Client(scheduler, timeout="30s") as client:
                client.register_plugin(SweepWorkerSetup())
                yield client
            return
        with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            client.register_plugin(SweepWorkerSetup(driver_pid=os.getpid()))
            yield client


def dask_pass(cells: list[Cell], store: ResultStore, client, *, force: bool, wait: bool,
              compute: Callable[[Cell], dict], finished: Callable[[Cell, str, float], None],
              cost: Callable[[Cell], float]) -> list[Cell]:
    """One pass over ``cells`` on the cluster of ``client``; returns the cells a concurrent sweep held
    (only when ``wait`` is off). Same outcomes as the local pool's pass (see the module docstring)."""
    from distributed import KilledWorker, as_completed

    busy: list[Cell] = []
    held: dict[object, tuple[Cell, contextlib.ExitStack]] = {}
    try:
        for cell in cells:  # already sorted most expensive first
            lock = contextlib.ExitStack()
            if not lock.enter_context(store.cell_lock(cell.key, wait=wait)):
                lock.close()
                busy.append(cell)
                continue
            if not force or wait:  # as in the local pool: a forced cell put aside is not recomputed again
                if store.load(cell) is not None:
                    lock.close()
                    finished(cell, "reused", 0.0)
                    continue
            future = client.submit(compute_on_worker, cell, compute, pure=False, priority=cost(cell),
                                   key=f"optverify-cell-{cell.key}-{os.urandom(4).hex()}")
            held[future] = (cell, lock)
        for future in as_completed(list(held)):
            cell, lock = held.pop(future)
            try:
                row = future.result()
                store.save(row)
            except KilledWorker as exc:
                raise RuntimeError(f"verify rates: workers died computing {cell.key} too often ({exc}); the finished "
                                   "cells are saved; rerun to resume") from None
            finally:
                lock.close()
            finished(cell, "run", float(row.get("wall_time", 0.0)))
    finally:
        for future, (_, lock) in held.items():
            future.cancel()
            lock.close()
    return busy
