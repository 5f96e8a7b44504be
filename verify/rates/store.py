r"""Cached, resumable storage of cell results: one JSON row per cell.

A row (written by :func:`verify.rates.execute.run_cell`, completed here) holds every setting of the
cell (``spec``: algorithm, hyperparameters, problem, noise, schedule, horizons, seed count, master
seed, metrics), the seed ids, the per-seed values of every metric at every horizon, the problem
and noise constants, per-run wall times and modes, and its **provenance**: the git commit (and
whether the code — ``algorithms/``, ``synthetic/``, ``verify/`` — differed from it, with the changed
paths), the versions of Python, torch, numpy, scipy and sympy, the
platform and the UTC time.

**Cache.** A row lives in ``<dir>/<key>.json`` (``/`` in the key becomes ``__``). It is valid for a
cell when its ``digest`` equals :meth:`Cell.digest` (same spec and :data:`FORMAT_VERSION`); the git
commit is recorded but does not invalidate (rerun with ``--force`` after changing an algorithm).
**Resume.** Rows are written atomically (a temporary file, then :func:`os.replace`), one per
finished cell, so killing a sweep loses at most the cells in progress and rerunning it computes
only the missing ones. Rows get the mode a new file gets under the process's umask (0644 under
the usual 022), so a shared results folder stays readable by the group.

**Concurrency.** A cell is computed only under its lock (:meth:`ResultStore.cell_lock`, an
exclusive ``flock`` on ``<dir>/.<key>.lock``): two sweeps into one folder share the cells, each
computing the ones it locks first and reusing (waiting for) the others, so nothing is computed
twice. The kernel drops a lock when its holder dies (even by ``kill -9``), so a dead sweep never
blocks the next one; a lock file is removed by the holder that finishes (one left by a killed
holder is reused and removed by the next one). The lock holder also removes the temporary files
a killed writer of the same cell left behind.

Values are stored with 9 significant digits and every check is evaluated from the stored rows,
so a verdict recomputed from the files is identical to the one printed after the sweep.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .spec import Cell

__all__ = ["dirty_refusal", "ResultStore", "provenance", "row_values"]


@lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 without the process's umask bits (read once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


#: the code whose state a row records (a change elsewhere does not make the row "dirty")
_CODE_PATHS = ("algorithms", "synthetic", "verify", "pyproject.toml")


@lru_cache(maxsize=1)
def _git_state() -> dict[str, Any]:
    """The commit and whether the code differed from it. Without a git checkout (a copy of the tree sent to
    another machine), ``OPTVERIFY_GIT_COMMIT`` names the commit the copy was made from; its cleanliness is
    then unknown (``git_dirty`` None), so such rows never serve as a regression baseline."""
    root = Path(__file__).resolve().parents[2]
    unknown = {"git_commit": os.environ.get("OPTVERIFY_GIT_COMMIT") or None, "git_dirty": None}
    if unknown["git_commit"]:
        unknown["git_source"] = "OPTVERIFY_GIT_COMMIT (no checkout: cleanliness unknown)"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        # only the code that determines a result counts (results/ and the docs may change during a sweep)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *_CODE_PATHS], cwd=root,
                               capture_output=True, text=True, timeout=10)
        if commit.returncode != 0 or dirty.returncode != 0:
            return unknown
        changed = [line[3:] for line in dirty.stdout.splitlines() if line.strip()]
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(changed), "git_dirty_paths": changed[:20]}
    except (OSError, subprocess.SubprocessError):
        return unknown


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "scipy", "sympy"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:  # pragma: no cover - all are dependencies
            out[name] = "missing"
    return out


def dirty_refusal(*, computing: bool, stored: dict[str, dict[str, Any]]) -> str | None:
    """Why a sweep must not go on without ``--allow-dirty``, or ``None``: it would compute rows from code that
    differs from its commit (``computing``), or would judge rows that were (``stored``). Such rows say what a
    tree nobody can check out again computed; a tree whose cleanliness is unknown (no checkout) is allowed."""
    reasons = []
    state = _git_state() if computing else {}
    if state.get("git_dirty"):
        paths = state.get("git_dirty_paths") or []
        reasons.append(f"the code differs from commit {str(state['git_commit'])[:12]} ({', '.join(paths[:5])}"
                       f"{', …' if len(paths) > 5 else ''})")
    dirty = sorted(key for key, row in stored.items() if row.get("provenance", {}).get("git_dirty") is True)
    if dirty:
        reasons.append(f"{len(dirty)} stored row(s) were computed from a dirty tree ({', '.join(dirty[:5])}"
                       f"{', …' if len(dirty) > 5 else ''})")
    return "; ".join(reasons) or None


def provenance() -> dict[str, Any]:
    """Where and with what a row was computed."""
    import torch

    return {**_git_state(), "versions": _versions(), "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(), "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "argv": " ".join(sys.argv[:8])}


def row_values(row: dict[str, Any], metric: str) -> np.ndarray:
    """``[n_T, S]`` values of ``metric`` from a row."""
    try:
        return np.asarray(row["values"][metric], dtype=np.float64)
    except KeyError:
        raise KeyError(f"row {row.get('key')!r} has no metric {metric!r}; it has {sorted(row.get('values', {}))}") from None


class ResultStore:
    """One directory of rows (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / (self._stem(key) + ".json")

    @staticmethod
    def _stem(key: str) -> str:
        return key.replace("/", "__")

    @contextlib.contextmanager
    def cell_lock(self, key: str, *, wait: bool) -> Iterator[bool]:
        """Hold the lock of cell ``key`` for the block; yields False (without the lock) when another
        process holds it and ``wait`` is False. See the module docstring."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f".{self._stem(key)}.lock"
        fd = self._acquire(path, wait)
        if fd is None:
            yield False
            return
        try:
            for stale in self.directory.glob(f".tmp-{self._stem(key)}-*"):  # a killed writer's leftovers
                with contextlib.suppress(OSError):
                    stale.unlink()
            yield True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still holding it, so a waiter never locks a removed file
            os.close(fd)

    @staticmethod
    def _acquire(path: Path, wait: bool) -> int | None:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, _file_mode())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # the previous holder removed the file after we opened it: lock the new one

    def load(self, cell: Cell) -> dict[str, Any] | None:
        """The stored row of ``cell``, or ``None`` when missing, unreadable or stale (digest mismatch)."""
        row = self.read(cell.key)
        if row is None or row.get("digest") != cell.digest():
            return None
        return row

    def read(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        try:
            with open(path) as fh:
                return json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return None  # a torn or foreign file is recomputed, never trusted

    def save(self, row: dict[str, Any]) -> Path:
        """Write ``row`` atomically (adds ``provenance`` when absent); returns the path."""
        row = dict(row)
        row.setdefault("provenance", provenance())
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(row["key"])
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{self._stem(row['key'])}-", suffix=".json", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(row, fh, separators=(",", ":"), allow_nan=True)
                fh.write("\n")
            os.chmod(tmp, _file_mode())  # mkstemp creates 0600
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def missing(self, cells: Iterable[Cell]) -> list[Cell]:
        return [c for c in cells if self.load(c) is None]

    def rows(self, cells: Iterable[Cell]) -> dict[str, dict[str, Any]]:
        """``{key: row}`` for the cells whose valid row is stored."""
        out = {}
        for c in cells:
            row = self.load(c)
            if row is not None:
                out[c.key] = row
        return out

    def all_rows(self) -> list[dict[str, Any]]:
        """Every readable row in the directory (for figures: no cell list needed)."""
        out = []
        for path in sorted(self.directory.glob("*.json")):
            if path.name.startswith((".", "_")):
                continue
            try:
                with open(path) as fh:
                    row = json.load(fh)
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(row, dict) and "digest" in row and "values" in row:
                out.append(row)
        return out
