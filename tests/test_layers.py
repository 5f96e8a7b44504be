"""The packages only look down: algorithms → synthetic → verify (engines) → paper_checks (claim content) → CLI.

Every import statement of every module is parsed (function-level imports included, and
``importlib.import_module("literal")`` calls); an import of a higher layer fails the test, and so does an
import of another package's private module or name (``algorithms._base``, ``from x import _name``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: layer of each top-level package; the CLI (verify.cli, verify.__main__, verify.commands) sits above all
LAYERS = {"algorithms": 0, "synthetic": 1, "verify": 2, "paper_checks": 3}
CLI = 4
CLI_MODULES = ("verify.cli", "verify.__main__", "verify.commands")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    if any(module == m or module.startswith(m + ".") for m in CLI_MODULES):
        return CLI
    return LAYERS.get(module.split(".")[0])


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """``(line, absolute module, imported names)`` of every import in ``tree``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target, [alias.name for alias in node.names]))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.lineno, node.args[0].value, []))
    return out


def layer_violations(root: Path) -> list[str]:
    problems = []
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            own_layer, own_top = layer_of(module), module.split(".")[0]
            tree = ast.parse(path.read_text(), filename=str(path))
            for line, target, names in imported_modules(tree, module, path.name == "__init__.py"):
                top = target.split(".")[0]
                if top not in LAYERS:
                    continue
                where = f"{path.relative_to(root)}:{line}"
                if layer_of(target) > own_layer:
                    problems.append(f"{where}: {module} imports {target}, a higher layer")
                if top != own_top:
                    private = [p for p in target.split(".")[1:] if p.startswith("_") and not p.startswith("__")]
                    private += [n for n in names if n.startswith("_") and not n.startswith("__")]
                    if private:
                        problems.append(f"{where}: {module} imports private {private} of {target}")
    return problems


def test_no_module_imports_a_higher_layer_or_another_packages_private_names():
    problems = layer_violations(ROOT)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("planted, expected", [
    ("synthetic/bad.py", "from verify.rates import cells\n"),
    ("algorithms/bad.py", "def f():\n    import synthetic.runner\n"),
    ("verify/bad.py", "import importlib\nimportlib.import_module('paper_checks.gpu_lm')\n"),
    ("verify/rates/bad.py", "from ..commands import rates\n"),
    ("paper_checks/bad.py", "from verify.cli import main\n"),
    ("verify/private.py", "from algorithms._base import ReferenceOptimizer\n"),
    ("synthetic/private.py", "from algorithms.adam import _hidden\n"),
])
def test_the_check_catches_a_planted_edge(tmp_path, planted, expected):
    for package in LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "verify" / "rates").mkdir()
    (tmp_path / "verify" / "rates" / "__init__.py").write_text("")
    (tmp_path / "verify" / "commands").mkdir()
    (tmp_path / "verify" / "commands" / "__init__.py").write_text("import paper_checks\n")  # the CLI may
    assert layer_violations(tmp_path) == []
    (tmp_path / planted).write_text(expected)
    problems = layer_violations(tmp_path)
    assert len(problems) == 1 and planted in problems[0], problems
