"""Helpers for the paper claim tests: a private copy of the result files in which a test can plant a
bad result (a failed rate verdict, a memory cell that does not match, a missing file) and run a claim
against it. The claims read ``paper_checks._results.RESULTS``; the fixture points it at the copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import paper_checks
from paper_checks import _results
from verify.claims import CLAIMS, load_claims, run_claim

#: the result files the paper modules read (figures and rate rows are not needed to judge a claim)
READ = ("rates/quick/verdicts.json", "rates/quick/theorems.json", "memory/paper_comparison.json",
        "memory/model_totals.json", "memory/gpu_memory.json", "rank/lemma33.json", "rank/rank_one_limit.json",
        "rank/noise_effect.json", "rank/adarankgrad_trace.json", "oracle/thirdparty.json", "variants/variants.json")
COMMITTED = Path(_results.RESULTS)


class Planted:
    """A copy of the committed results; ``edit`` changes a JSON file in place, ``remove`` deletes it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def edit(self, relative: str, change: Callable[[Any], Any]) -> None:
        """``change(data)`` edits the parsed file in place (its return value is ignored)."""
        path = self.root / relative
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink()

    def rate_row(self, row_key: str, /, **fields: Any) -> None:
        def change(data):
            row = next(r for r in data["results"] if r["key"] == row_key)
            row.update(fields)
        self.edit("rates/quick/verdicts.json", change)

    def variant(self, row_key: str, /, **fields: Any) -> None:
        def change(data):
            row = next(r for r in data["results"] if r["key"] == row_key)
            row.update(fields)
        self.edit("variants/variants.json", change)

    def memory_cell(self, source: str, model: str, entry: str, **fields: Any) -> None:
        def change(data):
            cell = next(c for c in data["cells"] if c["source"].startswith(source) and c["model"] == model
                        and c["entry"] == entry)
            cell.update(fields)
        self.edit("memory/paper_comparison.json", change)

    def thirdparty(self, row_id: str, **fields: Any) -> None:
        def change(data):
            next(r for r in data["rows"] if r["id"] == row_id).update(fields)
        self.edit("oracle/thirdparty.json", change)


def copy_results(tmp_path: Path, monkeypatch) -> Planted:
    for relative in READ:
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(COMMITTED / relative, target)
    monkeypatch.setattr(_results, "RESULTS", tmp_path)
    return Planted(tmp_path)


def claim_result(key: str) -> dict:
    """Run the claim ``key`` (loading every paper module first)."""
    load_claims(paper_checks)
    return run_claim(CLAIMS[key])


def paper_results(paper: str) -> dict[str, dict]:
    """Every claim of ``paper`` (its module's and the GPU runs'), run."""
    return {c.key: run_claim(c) for c in load_claims(paper_checks) if c.paper == paper}


def assert_not_good(result: dict, *, asserted: bool | None = None) -> None:
    """A planted bad result never passes: FAIL/INCONSISTENT/ERROR (or INCONCLUSIVE where it cannot decide)."""
    assert result["verdict"] not in ("PASS", "CONSISTENT"), result
    if asserted is not None:
        assert result["asserted"] is asserted, result
