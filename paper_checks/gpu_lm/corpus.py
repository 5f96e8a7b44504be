"""A real text corpus every machine builds identically without a download: this repository's own files.

**What it is.** The bytes of every file tracked at a pinned commit of this repository whose name ends in
one of the spec's suffixes (Python sources and Markdown documentation by default), outside the excluded
folders (``results/``: generated numbers, not language), read from git's object store with
``git ls-tree`` and ``git cat-file`` (never from the working tree, so uncommitted edits cannot leak in).
Files are taken in path order; each is followed by one NUL byte, the end-of-document mark (NUL does not
occur in the text). Tokens are bytes (vocabulary 256), as for the HMM language.

**Why this source.** A commit hash names its tree exactly, so every clone with the commit in its history
builds the same bytes, offline; the corpus is natural text (code, English prose, mathematics) with
long-range structure, unlike the HMM. Its limit is size: about 2.1 MB (1.9 MB of training text at the
plan's commit), so a 50M-token run passes over the training split ~26 times and the validation loss measures
memorisation and overfitting after many epochs as well as optimisation (results record the training loss
too; docs/gpu_protocol.md). Other offline sources were rejected: the Python
standard library and torch's sources differ between the machines' versions, and any packaged corpus is
a download.

**Split** (fixed rule). A file goes to validation when the first 8 bytes of ``sha256(path)``, read as a
big-endian integer, are ``0 mod validation_every`` (10: about a tenth of the files); whole files are split,
so no text is shared between the two sides except what files copy from each other.

**Pin.** The spec records the commit, the byte counts of both splits and the sha256 of ``train || val``;
:func:`load_corpus` checks all of them and raises on any mismatch. Machines without the repository's
history (the lent GPU machine receives a copy of the working tree, not ``.git``) read a cache file built
beforehand by ``python -m paper_checks.gpu_lm.protocol corpus`` (``.protocol/corpus/``, carried along),
checked against the same hash.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = ["TextCorpusSpec", "TextCorpus", "CorpusMismatch", "build_corpus", "load_corpus", "is_validation",
           "CACHE_DIR"]

ROOT = Path(__file__).resolve().parents[2]
#: where built corpora are cached (ignored by git; carried to the GPU machine)
CACHE_DIR = ROOT / ".protocol" / "corpus"
SEPARATOR = b"\x00"


class CorpusMismatch(ValueError):
    """The bytes read or built are not the pinned corpus."""


@dataclass(frozen=True)
class TextCorpusSpec:
    commit: str  #: the full 40-hex commit whose tree is read
    sha256: str  #: of the train bytes followed by the validation bytes
    train_bytes: int
    val_bytes: int
    suffixes: tuple[str, ...] = (".py", ".md")
    exclude: tuple[str, ...] = ("results/",)
    validation_every: int = 10

    def __post_init__(self) -> None:
        if len(self.commit) != 40 or any(c not in "0123456789abcdef" for c in self.commit):
            raise ValueError(f"commit must be a full 40-hex commit id, got {self.commit!r}")
        if self.validation_every < 2:
            raise ValueError(f"validation_every must be >= 2, got {self.validation_every}")

    @classmethod
    def from_dict(cls, d: dict) -> "TextCorpusSpec":
        fields = {k: v for k, v in d.items() if k != "kind"}
        for key in ("suffixes", "exclude"):
            if key in fields:
                fields[key] = tuple(fields[key])
        return cls(**fields)

    @property
    def cache_name(self) -> str:
        return f"repo-{self.commit[:12]}-{self.sha256[:12]}.bin"


@dataclass(frozen=True)
class TextCorpus:
    spec: TextCorpusSpec
    train: torch.Tensor = field(repr=False)  #: uint8
    val: torch.Tensor = field(repr=False)  #: uint8


def is_validation(path: str, every: int) -> bool:
    """The split rule: ``int.from_bytes(sha256(path)[:8], "big") % every == 0``."""
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") % every == 0


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise CorpusMismatch("git is not installed here; build the corpus on a machine with the repository "
                             "(python -m paper_checks.gpu_lm.protocol corpus) and carry .protocol/corpus") from exc
    if out.returncode:
        raise CorpusMismatch(f"git {' '.join(args[:2])} failed in {repo}: {out.stderr.decode().strip()}")
    return out.stdout


def _selected_blobs(repo: Path, spec: TextCorpusSpec) -> list[tuple[str, str]]:
    """``(path, blob id)`` of the selected files at the commit, in path order."""
    _git(repo, "cat-file", "-e", f"{spec.commit}^{{commit}}")
    listing = _git(repo, "ls-tree", "-r", "-z", "--full-tree", spec.commit)
    blobs = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.decode().split("\t", 1)
        mode, kind, blob = meta.split()
        if kind != "blob" or mode == "120000":  # symbolic links are not text
            continue
        if path.endswith(spec.suffixes) and not path.startswith(spec.exclude):
            blobs.append((path, blob))
    return sorted(blobs)


def _read_blobs(repo: Path, blobs: list[str]) -> list[bytes]:
    raw = _git(repo, "cat-file", "--batch", data="".join(f"{b}\n" for b in blobs).encode())
    out, pos = [], 0
    for blob in blobs:
        header_end = raw.index(b"\n", pos)
        name, kind, size = raw[pos:header_end].decode().split()
        if name != blob or kind != "blob":
            raise CorpusMismatch(f"git cat-file returned {name} {kind} for {blob}")
        start = header_end + 1
        out.append(raw[start : start + int(size)])
        pos = start + int(size) + 1
    return out


def corpus_bytes(repo: Path, spec: TextCorpusSpec) -> tuple[bytes, bytes]:
    """``(train, val)`` bytes of the corpus at ``spec.commit`` in ``repo`` (no hash check)."""
    blobs = _selected_blobs(Path(repo), spec)
    contents = _read_blobs(Path(repo), [b for _, b in blobs])
    train, val = [], []
    for (path, _), text in zip(blobs, contents):
        (val if is_validation(path, spec.validation_every) else train).append(text + SEPARATOR)
    return b"".join(train), b"".join(val)


def _check(spec: TextCorpusSpec, train: bytes, val: bytes, where: str) -> None:
    digest = hashlib.sha256(train + val).hexdigest()
    if (len(train), len(val), digest) != (spec.train_bytes, spec.val_bytes, spec.sha256):
        raise CorpusMismatch(
            f"the corpus {where} is not the pinned one: train/val bytes {len(train)}/{len(val)}, sha256 {digest}; "
            f"pinned {spec.train_bytes}/{spec.val_bytes}, sha256 {spec.sha256} (commit {spec.commit})")


def _write_cache(path: Path, train: bytes, val: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(train + val)
    os.replace(tmp, path)


def _as_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def build_corpus(spec: TextCorpusSpec, repo: str | Path = ROOT, cache_dir: str | Path = CACHE_DIR) -> Path:
    """Build the corpus from git, check it against the pin, and write the cache file (returned)."""
    train, val = corpus_bytes(Path(repo), spec)
    _check(spec, train, val, f"built from {repo}")
    path = Path(cache_dir) / spec.cache_name
    _write_cache(path, train, val)
    return path


def load_corpus(spec: TextCorpusSpec, repo: str | Path = ROOT, cache_dir: str | Path | None = CACHE_DIR) -> TextCorpus:
    """The pinned corpus: from the cache file when there is one (checked), else built from git (checked, and
    cached unless ``cache_dir`` is None). A mismatch anywhere raises :class:`CorpusMismatch`."""
    path = None if cache_dir is None else Path(cache_dir) / spec.cache_name
    if path is not None and path.exists():
        data = path.read_bytes()
        train, val = data[: spec.train_bytes], data[spec.train_bytes :]
        _check(spec, train, val, f"in {path}")
    else:
        train, val = corpus_bytes(Path(repo), spec)
        _check(spec, train, val, f"built from {repo}")
        if path is not None:
            _write_cache(path, train, val)
    return TextCorpus(spec, _as_tensor(train), _as_tensor(val))
