"""Check, before any work, that a command's output paths can be written.

A command that computes for minutes and then cannot write its result has wasted the minutes and
ends in a traceback; :func:`refuse_unwritable` tries the write up front (a probe file created and
removed in the target folder, so read-only file systems, permissions, ACLs and quotas all count)
and prints one line instead.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

__all__ = ["file_problem", "folder_problem", "refuse_unwritable"]


def _probe(directory: Path) -> str | None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".optverify-write-test-", dir=directory)
    except OSError as exc:
        return f"cannot write in {directory} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None


def file_problem(path: str | os.PathLike) -> str | None:
    """``None`` when the file ``path`` can be created or overwritten, else why not.

    Its folder must exist (commands open the file, they do not create folders for it).
    """
    p = Path(path)
    if p.is_dir():
        return "is a folder, not a file"
    if p.exists():
        try:
            with open(p, "r+b"):  # opened for writing, not truncated
                pass
        except OSError as exc:
            return f"cannot write it ({exc.strerror or exc})"
        return None
    folder = p.parent
    if not folder.is_dir():
        return f"its folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
    return _probe(folder)


def folder_problem(path: str | os.PathLike) -> str | None:
    """``None`` when files can be written in the folder ``path`` (created with its parents if missing)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        return "exists and is not a folder"
    base = p
    while not base.exists() and base.parent != base:
        base = base.parent
    if not base.is_dir():
        return f"{base} is not a folder"
    return _probe(base)


def refuse_unwritable(command: str, *, files: dict[str, str | None] | None = None,
                      folders: dict[str, str | None] | None = None) -> bool:
    """Print ``verify COMMAND: OPTION PATH: reason`` to stderr for the first unwritable output and
    return True (the command then exits with status 2); ``None`` paths are not checked."""
    checks = [(option, path, file_problem) for option, path in (files or {}).items()]
    checks += [(option, path, folder_problem) for option, path in (folders or {}).items()]
    for option, path, problem_of in checks:
        if path is None:
            continue
        problem = problem_of(path)
        if problem:
            print(f"verify {command}: {option} {path}: {problem}", file=sys.stderr)
            return True
    return False
