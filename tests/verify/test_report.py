"""verify report: the committed report is what the committed results give, byte for byte; the page is
well-formed, standalone and complete; a changed result changes the report."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import paper_checks
from paper_checks import PAPER_MODULES, _results
from verify import report as report_mod
from verify.cli import main

from .report_html import parse_page

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "results" / "report"


@pytest.fixture(scope="module")
def built():
    return report_mod.build_report(paper_checks)


@pytest.fixture(scope="module")
def rendered(built):
    return report_mod.rendered(built)


def test_the_committed_report_regenerates_byte_for_byte(rendered):
    for name, text in rendered.items():
        committed = (COMMITTED / name).read_text(encoding="utf-8")
        assert committed == text, f"results/report/{name} is stale: run `verify report` and commit it"


def test_verify_report_writes_the_same_files_and_check_agrees(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 0
    for name in report_mod.FILES:
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes()
    assert main(["report", "--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "report.md").write_text("stale\n")
    assert main(["report", "--check", "--out", str(tmp_path)]) == 1
    assert "report.md" in capsys.readouterr().out


def test_a_changed_result_changes_the_report(tmp_path, monkeypatch, built):
    shutil.copytree(_results.RESULTS, tmp_path / "results", ignore=shutil.ignore_patterns("report"))
    path = tmp_path / "results" / "rank" / "lemma33.json"
    path.write_text(path.read_text().replace('"bound_holds": true', '"bound_holds": false'))
    monkeypatch.setattr(_results, "RESULTS", tmp_path / "results")
    changed = report_mod.build_report(paper_checks)
    row = next(r for r in changed.rows if r["key"] == "galore.rank.lemma-3.3")
    assert row["verdict"] == "FAIL"
    assert report_mod.stale_files(COMMITTED, changed) == [str(COMMITTED / "report.md"), str(COMMITTED / "report.html")]


def test_the_page_is_well_formed_standalone_and_complete(rendered, built):
    page = parse_page(rendered["report.html"])
    assert page.errors == []
    assert page.external == [] and page.scripts == 0  # nothing fetched, nothing run
    assert page.sections == [s.anchor for s in built.sections]
    papers = {__import__(f"paper_checks.{m}", fromlist=["PAPER"]).PAPER for m in PAPER_MODULES}
    assert papers <= {s.paper for s in built.sections}
    figures = {f for s in built.sections for f in s.figures}
    assert len(page.images) == len(figures) > 0  # each figure embedded once, the others link to it
    assert all(img["width"] > 0 and img["height"] > 0 for img in page.images)
    assert {"summary", "sources", "legend", "tags"} <= set(page.ids)
    claims = [i for i in page.ids if i.startswith("claim-")]
    assert len(claims) == len(built.rows)


def test_the_summary_counts_every_claim_once(rendered, built):
    md = rendered["report.md"]
    total = re.search(r"^\| \*\*all\*\* \| \*\*(\d+)\*\* \|(.*)\|$", md, re.M)
    assert total and int(total.group(1)) == len(built.rows)
    counts = [int(x.strip(" *")) for x in total.group(2).split("|")]
    assert sum(counts) == len(built.rows)


def test_the_report_states_the_commit_and_cleanliness_of_the_rate_results(rendered):
    import json
    row = next((ROOT / "results" / "rates" / "quick").glob("*__*.json"))
    prov = json.loads(row.read_text())["provenance"]
    line = next(l for l in rendered["report.md"].splitlines() if l.startswith("| convergence rates"))
    assert prov["git_commit"][:12] in line
    assert ("| yes |" if prov["git_dirty"] is False else "| **no** |") in line


def test_markdown_figure_links_resolve(rendered):
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", rendered["report.md"])
    assert links and all((COMMITTED / link).resolve().is_file() for link in links)

