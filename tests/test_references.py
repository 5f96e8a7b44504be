"""Every document a module cites resolves inside the repository: a ``docs/`` page (and its numbered
section), the README, or a file the code itself writes — never notes that are not in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("algorithms", "synthetic", "verify", "paper_checks")
CITATION = re.compile(r"(?<![\w/.-])((?:docs/)?[\w-]+\.md)(?:\s+§\s*([\d.]+\d))?")


def tracked_names() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    files = out.stdout.split() if out.returncode == 0 else [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.md")]
    return {Path(f).name for f in files} | set(files)


def sections(page: Path) -> set[str]:
    numbers = set()
    for line in page.read_text().splitlines():
        match = re.match(r"#+\s+([\d.]+\d)", line)
        if match:
            numbers.add(match.group(1))
    return numbers


def unresolved(root: Path, known: set[str]) -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                for name, section in CITATION.findall(line):
                    where = f"{path.relative_to(root)}:{lineno}"
                    if name not in known:
                        problems.append(f"{where}: cites {name}, which is not in the repository")
                    elif section and name.startswith("docs/"):
                        first = section.split("–")[0]
                        if first not in sections(root / name):
                            problems.append(f"{where}: cites {name} §{section}, which has no such section")
    return problems


def test_every_cited_document_is_in_the_repository():
    problems = unresolved(ROOT, tracked_names())
    assert not problems, "\n".join(problems)


def test_the_check_finds_a_citation_of_missing_notes(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "methods.md").write_text("# x\n## 1. One\n### 1.2 Two\n")
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "algorithms" / "ok.py").write_text('"""See docs/methods.md §1.2 and README.md."""\n')
    known = {"docs/methods.md", "methods.md", "README.md"}
    assert unresolved(tmp_path, known) == []
    (tmp_path / "verify" / "bad.py").write_text('"""The rule (sn-sm.md §1.3) and docs/methods.md §3.1."""\n')
    problems = unresolved(tmp_path, known)
    assert len(problems) == 2 and "sn-sm.md" in problems[0] and "§3.1" in problems[1]
