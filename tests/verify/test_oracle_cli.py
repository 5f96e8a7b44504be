"""``verify oracle`` / ``verify trace``: exit codes, strict JSON, one-line errors, the current directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verify.cli import main

ADAM = ["oracle", "--reference", "adam", "--candidate", "torch.optim:AdamW"]


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_readme_example_passes_with_exit_0(tmp_path, capsys):
    code, out, _ = run(ADAM + ["--kwargs", '{"lr": 1e-3}', "--candidate-kwargs", '{"foreach": false}', "--dtype",
                               "float32", "--json", str(tmp_path / "r.json")], capsys)
    assert code == 0 and "PASS" in out
    data = json.loads((tmp_path / "r.json").read_text(), parse_constant=lambda t: pytest.fail(f"non-standard {t}"))
    assert data["passed"] is True and data["first_failure"] is None and len(data["series"]["params"]["tall"]) == 50


def test_failure_exits_1_and_explains(capsys):
    code, out, _ = run(ADAM + ["--candidate", "tests.verify.oracle_candidates:AdamWTurnsNaN",
                               "--candidate-kwargs", '{"nan_from": 5}', "--steps", "8"], capsys)
    assert code == 1 and "FAIL at step 5" in out and "NaN" in out
    code, out, _ = run(ADAM + ["--reference-kwargs", '{"weight_decay": 0}', "--steps", "3"], capsys)
    assert code == 1 and "weight_decay: reference 0, candidate 0.01" in out


@pytest.mark.parametrize("extra,message", [
    (["--kwargs", "{lr: 1}"], "--kwargs: invalid JSON"),
    (["--kwargs", "[1]"], "--kwargs: expected a JSON object"),
    (["--reference", "adamx"], "registered: adagrad_coordinate, adagrad_norm"),
    (["--shapes", "0x5"], "--shapes: every size must be >= 1"),
    (["--shapes", "axb"], "--shapes: cannot read 'axb'"),
    (["--shapes", ","], "--shapes: give at least one shape"),
    (["--candidate", "torch.optim:AdamWW"], "has no attribute 'AdamWW'; it has: ASGD"),
    (["--candidate", "no_such_module_xyz:Opt"], "no module named 'no_such_module_xyz'"),
    (["--candidate", "AdamW"], "expected 'package.module:Class'"),
    (["--state-map", "exp_avg"], "--state-map: expected ref_key=cand_key"),
    (["--state-map", "sum=sum"], "reference keys: ['exp_avg', 'exp_avg_sq', 'step']"),
    (["--groups", '[{"params": "matrix"}]'], "valid: matrices, tensors, vectors"),
    (["--groups", '{"params": "all"}'], "expected a non-empty JSON list"),
    (["--strict", "--dtype", "float32"], "strict runs the candidate in float64"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--trace", "x.npz"], "exactly one of --reference NAME or --trace FILE"),
    (["--candidate-kwargs", '{"lr": -1}'], "candidate: torch.optim:AdamW(params, **{"),
    (["--stub-missing", "a.b"], "--stub-missing: 'a.b' is not a top-level module name"),
])
def test_every_input_problem_is_one_line_exit_2(extra, message, capsys):
    argv = list(ADAM)
    for flag in ("--reference", "--candidate"):
        if flag in extra:
            i = argv.index(flag)
            del argv[i:i + 2]
    code, out, err = run(argv + extra, capsys)
    assert code == 2 and out == ""
    assert err.startswith("verify oracle: error: ") and err.count("\n") == 1 and message in err, err


def test_trace_input_problems(tmp_path, capsys):
    code, _, err = run(["oracle", "--trace", str(tmp_path / "none.npz"), "--candidate", "torch.optim:AdamW"], capsys)
    assert code == 2 and "cannot read" in err and err.count("\n") == 1
    trace = tmp_path / "adam.npz"
    assert run(["trace", "adam", "--out", str(trace), "--steps", "4"], capsys)[0] == 0
    code, _, err = run(["oracle", "--trace", str(trace), "--candidate", "torch.optim:AdamW", "--shapes", "3x3"], capsys)
    assert code == 2 and "--shapes does not apply to --trace" in err
    code, out, _ = run(["oracle", "--trace", str(trace), "--candidate", "torch.optim:AdamW", "--strict"], capsys)
    assert code == 0 and "PASS" in out


def test_trace_command(tmp_path, capsys):
    out_file = tmp_path / "lion.npz"
    code, out, _ = run(["trace", "lion", "--out", str(out_file), "--steps", "10", "--record-every", "5",
                        "--shapes", "6x4,3"], capsys)
    assert code == 0 and out_file.exists() and "10 steps, 2 recorded" in out
    for argv, message in [
        (["trace", "lion"], "give NAME and --out FILE"),
        (["trace", "nope", "--out", "x.npz"], "unknown optimizer 'nope'"),
        (["trace", "lion", "--out", "x.npz", "--gradients", "random", "--record-every", "3"], "--record-every needs --steps"),
        (["trace", "--all"], "--all writes every optimizer into --out-dir"),
    ]:
        code, _, err = run(argv, capsys)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_module_in_the_current_directory_is_importable(tmp_path):
    """The console script's sys.path does not hold the current directory; the command adds it."""
    script = Path(sys.executable).with_name("verify")
    if not script.exists():
        pytest.skip("the verify console script is not installed in this environment")
    (tmp_path / "my_local_adamw.py").write_text(
        "import torch\n\ndef make(params, **kwargs):\n    return torch.optim.AdamW(params, foreach=False, **kwargs)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(script), "oracle", "--reference", "adam", "--candidate", "my_local_adamw:make",
                          "--steps", "3"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "my_local_adamw:make vs reference adam" in out.stdout


def readme_oracle_commands():
    """The ``verify oracle`` commands in README.md's bash blocks, continuation lines joined."""
    import re
    import shlex

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("verify oracle"):
                commands.append(shlex.split(line.strip())[1:])
    return commands


def test_readme_first_oracle_command_passes(capsys):
    first = readme_oracle_commands()[0]
    assert first[:3] == ["oracle", "--reference", "adam"]
    code, out, _ = run(first, capsys)
    assert code == 0 and "PASS" in out


def test_readme_pytest_example_runs():
    import re

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "assert_matches" in b)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    namespace["test_my_adamw_matches_the_reference"]()
