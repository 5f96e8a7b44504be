"""Golden traces: round trip through torch and through the numpy-only reader; the committed traces."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import algorithms
from tests.verify.oracle_candidates import AdamWrongBiasCorrection
from verify.oracle import OracleInputError, assert_matches, check_trace, read_trace, write_trace
from verify.oracle.trace import GOLDEN_PERIODS, GOLDEN_SHAPES, GOLDEN_STEPS, golden_kwargs

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "results" / "oracle" / "traces"
READER_PATH = ROOT / "examples" / "numpy_trace_reader.py"
MOMENTS = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}


@pytest.fixture(scope="module")
def reader():
    spec = importlib.util.spec_from_file_location("numpy_trace_reader", READER_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def adam_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "adam.npz"
    write_trace("adam", path, kwargs={"lr": 1e-2}, steps=12)
    return path


def test_trace_round_trip_with_torch(adam_trace):
    rep = check_trace(adam_trace, torch.optim.AdamW, candidate_kwargs={"foreach": False}, strict=True, state_map=MOMENTS)
    assert rep.passed and max(rep.param_err) < 1e-14, rep.summary()
    assert rep.compared_steps == list(range(1, 13))
    assert any("weight_decay=0.1" in s for s in rep.settings)  # the trace's filled-in decay reaches the candidate
    f32 = check_trace(adam_trace, torch.optim.AdamW, state_map=MOMENTS)
    assert f32.passed and f32.dtype == "float32"
    bad = check_trace(adam_trace, AdamWrongBiasCorrection)
    assert bad.first_failure == 1
    with pytest.raises(AssertionError, match="FAIL at step 1"):
        assert_matches("adam", AdamWrongBiasCorrection, trace=adam_trace)


def test_trace_metadata_is_complete(adam_trace):
    trace = read_trace(adam_trace)
    meta = trace.metadata
    assert meta["reference"] == "adam" and meta["dtype"] == "float64" and meta["steps"] == 12
    assert meta["hyperparameters"][0]["lr"] == 1e-2 and meta["hyperparameters"][0]["weight_decay"] == 0.1
    assert meta["shapes"] == [[24, 16], [16, 24], [20, 20], [4, 3, 5], [17], []]
    assert sorted(meta["states"]) == ["exp_avg", "exp_avg_sq"]
    assert trace.arrays["grad/0"].shape == (12, 24, 16) and trace.arrays["grad/0"].dtype == np.float64
    assert meta["gradient_stream"]["kind"] == "lowrank" and meta["seed"] == 0


def test_numpy_reader_agrees_with_the_reference_to_round_off(reader, adam_trace):
    meta, arrays = reader.load_trace(str(adam_trace))
    passed, first, worst = reader.check(meta, arrays, reader.adam_step, rtol=1e-13)
    assert passed and worst < 1e-14

    def wrong_bias_correction(params, grads, states, t, meta):  # planted: the √v correction uses β1
        for i, (p, g) in enumerate(zip(params, grads)):
            h = meta["hyperparameters"][i]
            lr, (b1, b2), eps, wd = h["lr"], h["betas"], h["eps"], h["weight_decay"]
            st = states[i]
            if not st:
                st.update(m=np.zeros_like(p), v=np.zeros_like(p))
            p *= 1.0 - lr * wd
            st["m"] = b1 * st["m"] + (1.0 - b1) * g
            st["v"] = b2 * st["v"] + (1.0 - b2) * g * g
            p -= (lr / (1.0 - b1**t)) * st["m"] / (np.sqrt(st["v"] / (1.0 - b1**t)) + eps)

    assert reader.check(meta, arrays, wrong_bias_correction, rtol=1e-10)[:2] == (False, 1)


def test_numpy_reader_runs_without_torch(adam_trace):
    code = ("import sys, runpy; sys.modules['torch'] = None; "
            f"sys.argv = ['reader', {str(adam_trace)!r}]; runpy.run_path({str(READER_PATH)!r}, run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "PASS" in out.stdout


def test_recorded_subset_and_changing_state_shapes(tmp_path):
    path = tmp_path / "arg.npz"
    meta = write_trace("adarankgrad", path, kwargs={"max_steps_per_subspace": 8, "max_rank": 4}, shapes=GOLDEN_SHAPES,
                       steps=20, record=[3, 9, 20], periods=GOLDEN_PERIODS)
    assert meta["recorded_steps"] == [3, 9, 20]
    assert meta["states"]["exp_avg"]["0"] == "per_step"  # the rank adapts: 4 at step 3, 2 at step 9
    trace = read_trace(path)
    assert trace.state(3, 0)["exp_avg"].shape == (8, 4) and trace.state(9, 0)["exp_avg"].shape == (8, 2)
    rep = check_trace(path, algorithms.REGISTRY["adarankgrad"], strict=True, state_map=MOMENTS)
    assert rep.passed and rep.compared_steps == [3, 9, 20], rep.summary()


def test_trace_input_errors(tmp_path):
    with pytest.raises(OracleInputError, match="open-loop"):
        write_trace("adam", tmp_path / "x.npz", gradients="loss")
    with pytest.raises(OracleInputError, match="cannot read"):
        check_trace(tmp_path / "missing.npz", torch.optim.AdamW)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(OracleInputError, match="not an optverify trace"):
        check_trace(tmp_path / "other.npz", torch.optim.AdamW)
    with pytest.raises(OracleInputError, match="no state"):
        write_trace("adam", tmp_path / "y.npz", steps=2, states=["momentum"])


# ----------------------------------------------------------------------------- the committed traces
def test_committed_traces_cover_every_optimizer_and_stay_small():
    index = json.loads((COMMITTED / "index.json").read_text())
    assert sorted(index["traces"]) == sorted(algorithms.REGISTRY)
    total = 0
    for name, entry in index["traces"].items():
        data = (COMMITTED / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        total += len(data)
    assert total < 3 * 2**20


@pytest.mark.parametrize("name", sorted(algorithms.REGISTRY))
def test_committed_trace_matches_the_current_reference(name):
    """Regenerate with `verify trace --all --out-dir results/oracle/traces` after a deliberate change."""
    path = COMMITTED / f"{name}.npz"
    meta = read_trace(path).metadata
    assert meta["shapes"] == [list(s) for s in GOLDEN_SHAPES] and meta["steps"] == GOLDEN_STEPS
    assert meta["hyperparameters"][0].get("variant", "paper") == "paper"
    assert {k: meta["reference_kwargs"][k] for k in golden_kwargs(algorithms.REGISTRY[name])} == golden_kwargs(
        algorithms.REGISTRY[name])
    states = {k: k for k in meta["states"]}
    rep = check_trace(path, algorithms.REGISTRY[name], strict=True, state_map=states)
    assert rep.passed, rep.summary()


@pytest.mark.parametrize("name", ["adam", "lion"])
def test_numpy_reader_on_committed_traces(reader, name):
    meta, arrays = reader.load_trace(str(COMMITTED / f"{name}.npz"))
    passed, _, worst = reader.check(meta, arrays, reader.IMPLEMENTATIONS[name], rtol=1e-13)
    assert passed and worst < 1e-14
