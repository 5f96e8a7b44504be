"""The authors' own code, at test time: where a checkout lives and how to import it.

Three of the papers ship their optimizers only as repositories, not as packages:

=========  ==========================  =========================  ==========================================
key        repository                  commit we compared         import root and modules
=========  ==========================  =========================  ==========================================
``mars``   AGI-Arena/MARS              4831e28eba86               ``MARS/optimizers``: ``mars`` (``MARS``)
``ldadam`` IST-DASLab/LDAdam           f3c5daff2fc9               ``.``: ``ldadamw_torch`` (``LDAdamW``)
``sn_sm``  timmytonga/sn-sm            a4c1a4a5f255               ``.``: ``GenericOptim``, ``subset_norm``,
                                                                  ``subspace_momentum``, ``projectors``
=========  ==========================  =========================  ==========================================

Nothing here downloads or vendors that code. A user (or CI with network access) clones a repository
into ``<root>/<directory>`` where ``<root>`` is ``$OPTVERIFY_AUTHORS_CODE`` or ``.authors/`` at the
repository root (ignored by git), e.g. ``git clone https://github.com/AGI-Arena/MARS .authors/MARS``.
The cross-check tests (``tests/crosscheck/test_authors_code.py``) and ``verify bench --gpu`` use a
checkout when one is there and skip (saying why) when not.

:func:`imported` puts a checkout on ``sys.path`` for the duration of a block, with
:func:`verify.oracle.candidates.stubbed_imports` for the heavy libraries the code imports but does
not use for the optimizer (sn-sm's ``GenericOptim`` calls ``transformers``' ``require_version``), and
removes the modules it imported afterwards (``mars`` and ``projectors`` are generic top-level names).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .candidates import stubbed_imports

__all__ = ["AuthorsCode", "AUTHORS_CODE", "checkout_root", "locate", "commit_of", "imported"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class AuthorsCode:
    repository: str  #: owner/name on GitHub
    directory: str  #: the checkout's folder name under the root
    compared: str  #: the commit our ``variant="official"`` was compared with
    import_root: str  #: the folder (relative to the checkout) to put on ``sys.path``
    modules: tuple[str, ...]  #: the top-level modules imported from it
    stubs: tuple[str, ...] = ()  #: declared-but-unused dependencies stubbed while importing


AUTHORS_CODE: dict[str, AuthorsCode] = {
    "mars": AuthorsCode("AGI-Arena/MARS", "MARS", "4831e28eba863a4e69d7e9474ff8e73bc1b410fe", "MARS/optimizers", ("mars",)),
    "ldadam": AuthorsCode("IST-DASLab/LDAdam", "LDAdam", "f3c5daff2fc907869f8ebe8134cc29ea54c45639", ".",
                          ("ldadamw_torch",)),
    "sn_sm": AuthorsCode("timmytonga/sn-sm", "sn-sm", "a4c1a4a5f255bfe8f1e0749b4c1964484b5bdd88", ".",
                         ("GenericOptim", "subset_norm", "subspace_momentum", "projectors"), stubs=("transformers",)),
}


def checkout_root() -> Path:
    """``$OPTVERIFY_AUTHORS_CODE`` if set, else ``.authors/`` at the repository root."""
    env = os.environ.get("OPTVERIFY_AUTHORS_CODE")
    return Path(env) if env else ROOT / ".authors"


def _entry(key: str) -> AuthorsCode:
    if key not in AUTHORS_CODE:
        raise KeyError(f"unknown authors' code {key!r}; known: {sorted(AUTHORS_CODE)}")
    return AUTHORS_CODE[key]


def locate(key: str) -> Path | None:
    """The import root of the checkout of ``key``, or None when it is not there."""
    entry = _entry(key)
    path = checkout_root() / entry.directory / entry.import_root
    first = entry.modules[0]
    return path if (path / f"{first}.py").is_file() or (path / first / "__init__.py").is_file() else None


def commit_of(key: str) -> str | None:
    """The checkout's commit: a ``COMMIT`` file (written by an export) or the git ``HEAD``; None if unknown."""
    checkout = checkout_root() / _entry(key).directory
    marker = checkout / "COMMIT"
    if marker.is_file():
        return marker.read_text().strip() or None
    head = checkout / ".git" / "HEAD"
    if not head.is_file():
        return None
    ref = head.read_text().strip()
    if ref.startswith("ref: "):
        target = checkout / ".git" / ref[5:]
        return target.read_text().strip() if target.is_file() else None
    return ref


@contextlib.contextmanager
def imported(key: str) -> Iterator[dict[str, object]]:
    """Import the authors' modules of ``key`` from its checkout; yields ``{module name: module}``.

    Raises ``FileNotFoundError`` (naming the clone command) when there is no checkout."""
    entry = _entry(key)
    path = locate(key)
    if path is None:
        raise FileNotFoundError(
            f"no checkout of {entry.repository} under {checkout_root()}: "
            f"git clone https://github.com/{entry.repository} {checkout_root() / entry.directory}")
    before = set(sys.modules)
    sys.path.insert(0, str(path))
    try:
        with stubbed_imports(entry.stubs):
            modules = {name: importlib.import_module(name) for name in entry.modules}
        yield modules
    finally:
        sys.path.remove(str(path))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in entry.modules:
                del sys.modules[name]
