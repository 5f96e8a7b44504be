"""scripts/device_fast.sh, run on the CPU with ``--tiny`` (the GPU call's self-test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "device_fast.sh")


def run_script(tmp_path, *args, budget="300"):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "BUDGET_S": budget}
    return subprocess.run(["bash", SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_without_parts_it_prints_its_usage(tmp_path):
    done = run_script(tmp_path)
    assert done.returncode == 2 and "Suggested calls" in done.stdout


@pytest.mark.slow
def test_tiny_parts_write_their_files(tmp_path):
    done = run_script(tmp_path, "--tiny", "oracle", "compile60", "nonsense")
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "device_fast.log").read_text()
    assert "oracle: rc=0" in log and "compile60: rc=0" in log and "unknown part: nonsense" in log
    oracle = json.loads((tmp_path / "fast_oracle.json").read_text())
    assert oracle["counts"]["FAIL"] == 0 and oracle["counts"]["PASS"] == 5
    compiled = json.loads((tmp_path / "part_compile60.json").read_text())
    assert [r["optimizer"] for r in compiled["step"]] == ["lion (compile)"] and "steady_s" in compiled["step"][0]


@pytest.mark.slow
def test_a_spent_budget_skips_the_remaining_parts(tmp_path):
    done = run_script(tmp_path, "--tiny", "oracle", "steps60", budget="5")
    assert "oracle: skipped (budget spent)" in (tmp_path / "device_fast.log").read_text(), done.stdout
