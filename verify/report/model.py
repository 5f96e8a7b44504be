"""What the report shows, independent of its format: sections, rows, counts and the results' origin."""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

from verify.claims import KINDS, load_claims, run_claim
from verify.verdicts import ASSERTED_VERDICTS, REPORTED_VERDICTS, count_verdicts

__all__ = ["KIND_TITLES", "Section", "Source", "Report", "build_report", "verdict_counts", "COUNT_COLUMNS"]

#: the claims of paper_checks/gpu_lm about the toolkit itself
TOOLKIT = "optverify"
TOOLKIT_INTRO = ("The toolkit's own claims that the GPU runs measure directly (paper_checks/gpu_lm): every "
                 "reference optimizer trains the LLaMA-60M-shaped model without diverging, and the optimizer state "
                 "on the GPU equals the memory formula. These are asserted; the papers' own GPU claims are in their "
                 "sections, reported (the runs are scaled down).")

KIND_TITLES = {
    "rate": "Convergence rates",
    "rank": "Gradient rank",
    "memory": "Memory",
    "identity": "Exact identities and the authors' code",
    "code-vs-paper": "Paper vs the authors' code",
    "gpu": "GPU runs (scaled down) and claims not checked here",
    "behaviour": "Behaviour",
}
#: the verdict columns of the summary table: (group, verdict), asserted then reported (docs/verdicts.md)
COUNT_COLUMNS = tuple(("asserted", v) for v in ASSERTED_VERDICTS) + tuple(("reported", v) for v in REPORTED_VERDICTS)


@dataclass
class Section:
    paper: str
    anchor: str
    intro: str
    rows: list[dict[str, Any]]

    @property
    def figures(self) -> list[str]:
        seen: list[str] = []
        for row in self.rows:
            for fig in row.get("figures", []):
                if fig not in seen:
                    seen.append(fig)
        return seen

    def rows_of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["kind"] == kind]


@dataclass
class Source:
    """Where a family of result files came from."""

    name: str
    path: str
    commit: str | None
    clean: bool | None
    detail: str


@dataclass
class Report:
    sections: list[Section]
    sources: list[Source]
    results_root: Path
    grid: str = "quick"
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for s in self.sections for r in s.rows]


def verdict_counts(rows: Iterable[dict[str, Any]]) -> list[int]:
    """The counts of :data:`COUNT_COLUMNS` (asserted verdicts, then reported ones) over ``rows``."""
    counts = count_verdicts(rows)
    return [counts[group][verdict] for group, verdict in COUNT_COLUMNS]


def _anchor(paper: str) -> str:
    word = paper.split(",")[0].split(" (")[0].lower()
    return "paper-" + "".join(ch if ch.isalnum() else "-" for ch in word).strip("-")


def _intro(module) -> str:
    doc = inspect.cleandoc(module.__doc__ or "")
    return "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n") if p.strip())


def _kind_order(row: dict[str, Any]) -> tuple[int, str]:
    return (KINDS.index(row["kind"]) if row["kind"] in KINDS else len(KINDS), row["key"])


def build_report(package: ModuleType, quick: bool = True) -> Report:
    """Run every claim of ``package`` (the command passes :mod:`paper_checks`) on the saved results and group
    the verdicts by paper. The package names its paper modules in report order (``PAPER_MODULES``) and the
    results folder its claims read (``results_root()``)."""
    modules = [importlib.import_module(f"{package.__name__}.{name}") for name in package.PAPER_MODULES]
    claims = load_claims(package)
    rows = []
    for c in claims:
        row = run_claim(c, quick=quick)
        row.pop("seconds", None)  # wall time is not a property of the results
        rows.append(row)
    order = [m.PAPER for m in modules] + [TOOLKIT]
    intros = {m.PAPER: _intro(m) for m in modules}
    intros[TOOLKIT] = TOOLKIT_INTRO
    papers = order + sorted({r["paper"] for r in rows} - set(order))
    sections = []
    for paper in papers:
        own = sorted((r for r in rows if r["paper"] == paper), key=_kind_order)
        if own:
            sections.append(Section(paper, _anchor(paper), intros.get(paper, ""), own))
    root = Path(package.results_root())
    return Report(sections, collect_sources(root, "quick" if quick else "full"), root, "quick" if quick else "full")


# ----------------------------------------------------------------------------- where the results came from
def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _commits(records: Iterable[dict[str, Any]]) -> tuple[str | None, bool | None, str]:
    """One commit and cleanliness for a set of provenance records (or a description of the mix)."""
    pairs = sorted({(r.get("git_commit"), r.get("git_dirty")) for r in records}, key=str)
    if not pairs:
        return None, None, "no provenance recorded"
    if len(pairs) == 1:
        commit, dirty = pairs[0]
        return commit, (None if dirty is None else not dirty), ""
    commits = sorted({str(c)[:12] for c, _ in pairs})
    clean = all(d is False for _, d in pairs)
    return None, clean if all(d is not None for _, d in pairs) else None, f"{len(commits)} commits: {', '.join(commits)}"


def collect_sources(root: Path, grid: str) -> list[Source]:
    sources = []
    rate_dir = root / "rates" / grid
    rows = [d for p in sorted(rate_dir.glob("*__*.json")) if isinstance(d := _read(p), dict)]
    provs = [r["provenance"] for r in rows if isinstance(r.get("provenance"), dict)]
    commit, clean, mix = _commits(provs)
    created = sorted(p.get("created_utc") for p in provs if p.get("created_utc"))
    detail = f"{len(rows)} stored rate rows" + (f", computed {created[0]} to {created[-1]}" if created else "")
    sources.append(Source(f"convergence rates ({grid} grid)", f"rates/{grid}/", commit, clean,
                          "; ".join(x for x in (detail, mix) if x) if rows else "missing"))
    variants = _read(root / "variants" / "variants.json")
    if isinstance(variants, dict):
        meta = variants.get("meta") or {}
        sources.append(Source("paper vs code (variants)", "variants/variants.json", meta.get("git_commit"),
                              None if meta.get("git_dirty") is None else not meta["git_dirty"],
                              f"{len(variants.get('results') or [])} comparisons, computed {meta.get('created_utc')}, "
                              f"torch {(meta.get('versions') or {}).get('torch')}"))
    else:
        sources.append(Source("paper vs code (variants)", "variants/variants.json", None, None, "missing"))
    rank = [d for p in sorted((root / "rank").glob("*.json")) if isinstance(d := _read(p), dict)]
    sources.append(Source("gradient rank", "rank/", None, None,
                          f"{len(rank)} checks (torch {', '.join(sorted({str(d.get('torch')) for d in rank}))}); "
                          "commit not recorded" if rank else "missing"))
    comparison = _read(root / "memory" / "paper_comparison.json")
    gpu = _read(root / "memory" / "gpu_memory.json")
    mem = []
    if isinstance(comparison, dict):
        mem.append(f"paper comparison (torch {(comparison.get('provenance') or {}).get('torch')})")
    if isinstance(gpu, dict):
        meta = gpu.get("meta") or {}
        mem.append(f"GPU measurement on {meta.get('device')} (torch {meta.get('torch')})")
    sources.append(Source("memory", "memory/", None, None, "; ".join(mem) + "; commit not recorded" if mem else "missing"))
    runs = [d for p in sorted((root / "gpu_lm" / "runs").glob("*.json")) if isinstance(d := _read(p), dict)]
    devices = sorted({f"{(d.get('meta') or {}).get('device_name')} (torch {(d.get('meta') or {}).get('torch')})"
                      for d in runs})
    sources.append(Source("GPU language-model runs", "gpu_lm/runs/", None, None,
                          f"{len(runs)} run files on {', '.join(devices)}; commit not recorded" if runs else "missing"))
    oracle = _read(root / "oracle" / "thirdparty.json")
    if isinstance(oracle, dict):
        env = oracle.get("environment") or {}
        sources.append(Source("third-party implementations", "oracle/thirdparty.json", None, None,
                              f"{len(oracle.get('rows') or [])} oracle runs (torch {env.get('torch')}, "
                              f"{env.get('device')}); commit not recorded"))
    else:
        sources.append(Source("third-party implementations", "oracle/thirdparty.json", None, None, "missing"))
    return sources
