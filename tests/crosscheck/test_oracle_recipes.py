"""The third-party recipes (verify.oracle.recipes): each implementation as shipped gives the verdict
recorded in results/oracle/thirdparty.md, at the step where its deviation first acts, and the CLI
runs galore-torch and fira with the documented commands (stubbing transformers/bitsandbytes)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from verify.cli import main
from verify.oracle.recipes import RECIPES, available, run_recipe

pytestmark = pytest.mark.crosscheck


def _forget_galore_torch(monkeypatch):
    """Drop galore_torch from sys.modules (restored afterwards): an earlier test may have imported it
    with other stubs, and an import only runs once."""
    for name in [m for m in sys.modules if m == "galore_torch" or m.startswith("galore_torch.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.id for r in RECIPES])
def test_recipe_gives_its_verdict_at_its_step(recipe):
    if not available(recipe):
        pytest.skip(f"{recipe.distribution} is not installed (optional crosscheck extra)")
    report = run_recipe(recipe)
    assert report.first_failure == recipe.expect_step, report.summary(explain=True)
    text = report.summary()
    for phrase in recipe.explains:
        assert phrase in text, text


@pytest.mark.parametrize("rid", ["galore-torch", "fira", "fira-alpha", "po-galore"])
def test_documented_command_runs_through_the_cli(rid, capsys):
    recipe = next(r for r in RECIPES if r.id == rid)
    if not available(recipe):
        pytest.skip(f"{recipe.distribution} is not installed (optional crosscheck extra)")
    had_transformers = "transformers" in sys.modules
    code = main(recipe.argv())
    out = capsys.readouterr().out
    assert code == (0 if recipe.expect_step is None else 1), out
    assert ("PASS" if recipe.expect_step is None else f"FAIL at step {recipe.expect_step}") in out
    if importlib.util.find_spec("transformers") is None:  # the stub is gone after the import
        assert ("transformers" in sys.modules) == had_transformers


def test_missing_dependency_without_stub_is_one_line_with_the_fix(capsys, monkeypatch):
    if importlib.util.find_spec("galore_torch") is None:
        pytest.skip("galore-torch is not installed")
    if importlib.util.find_spec("transformers") is not None:
        pytest.skip("transformers is installed: nothing is missing")
    _forget_galore_torch(monkeypatch)
    code = main(["oracle", "--reference", "galore_adamw", "--candidate", "galore_torch:GaLoreAdamW"])
    err = capsys.readouterr().err
    assert code == 2 and "retry with --stub-missing transformers" in err and err.count("\n") == 1


def test_stubbed_8bit_class_refuses_to_run(monkeypatch):
    if importlib.util.find_spec("galore_torch") is None or importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("needs galore-torch without bitsandbytes")
    _forget_galore_torch(monkeypatch)
    from verify.oracle import load_candidate

    cls = load_candidate("galore_torch:GaLoreAdamW8bit", stub_missing=("transformers", "bitsandbytes"))
    import torch

    with pytest.raises(ImportError, match="is a stub"):
        cls([torch.zeros(2, requires_grad=True)])


def test_readme_commands_for_galore_torch_and_fira_pass(capsys):
    from tests.verify.test_oracle_cli import readme_oracle_commands

    commands = [c for c in readme_oracle_commands() if c[c.index("--candidate") + 1].startswith(("galore_torch", "fira"))]
    assert len(commands) == 2
    for argv in commands:
        module = argv[argv.index("--candidate") + 1].split(":")[0]
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (optional crosscheck extra)")
        code = main(argv)
        out = capsys.readouterr().out
        assert code == 0 and "PASS" in out, out
