"""verify/gpu_bench.py: the GPU benchmark's code path, run on the CPU with a tiny model (no timing is asserted)."""

from __future__ import annotations

import math

from verify import cli
from verify.gpu_bench import CONFIGS, SETTINGS, bench_optimizers, bench_training, copy_bandwidth, markdown, our_labels


def test_every_registered_optimizer_has_a_benchmark_setting():
    import algorithms

    assert set(SETTINGS) == set(algorithms.REGISTRY)


def test_step_bench_runs_every_optimizer_and_reports_state_and_floor():
    bandwidth = copy_bandwidth("cpu", 8)
    assert bandwidth > 0
    rows = bench_optimizers(CONFIGS["tiny"], "cpu", steady=2, third_parties=False, bandwidth=bandwidth)
    assert {r["optimizer"] for r in rows} == set(our_labels(SETTINGS))
    assert {"adam", "adam (fast)", "mars_adamw (fast)"} <= {r["optimizer"] for r in rows}
    assert {r["path"] for r in rows if r["optimizer"].endswith(" (fast)")} == {"fast"}
    for r in rows:
        assert "error" not in r, r
        assert r["steady_s"] > 0 and r["state_bytes"] >= 0 and math.isfinite(r["floor_s"])
    galore = next(r for r in rows if r["optimizer"] == "galore_adamw")
    assert galore["refresh_step_s"] > 0 and galore["amortized_s"] > 0
    adam = next(r for r in rows if r["optimizer"] == "adam")
    moments = 2 * 4 * adam["params"]  # two fp32 moments per parameter, plus a few scalar step counters
    assert moments <= adam["state_bytes"] <= moments + 1024


def test_training_bench_and_table():
    rows = bench_training(CONFIGS["tiny"], "cpu", names=["adam", "galore_adamw"], steps=1, batch=2, seq=16)
    assert [r["optimizer"] for r in rows] == ["torch AdamW fused"] + our_labels(["adam", "galore_adamw"])
    assert "adam (fast)" in our_labels(["adam"])
    assert all(r["tokens_per_s"] > 0 and 0 < r["optimizer_fraction"] < 1 for r in rows)
    text = markdown({"meta": {"device": "cpu", "torch": "x", "copy_bandwidth_bytes_per_s": 1e9, "gradients": "g",
                              "refresh_gap": 200}, "step": [], "training": rows})
    assert "galore_adamw" in text


def test_gpu_flag_without_cuda_is_a_clear_error(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    assert cli.main(["bench", "--gpu", "--json", str(tmp_path / "g.json")]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_authors_rows_are_skipped_with_the_clone_command_without_a_checkout(tmp_path, monkeypatch):
    from verify.gpu_bench import AUTHORS_ROWS, authors_code, build_model

    monkeypatch.setenv("OPTVERIFY_AUTHORS_CODE", str(tmp_path))
    rows = authors_code(build_model(CONFIGS["tiny"], "cpu"), 4)
    assert set(rows) == set(AUTHORS_ROWS)
    for label, value in rows.items():
        assert isinstance(value, FileNotFoundError) and "git clone https://github.com/" in str(value), label


def test_authors_rows_build_from_a_checkout_and_record_its_commit(tmp_path, monkeypatch):
    """A stand-in checkout (a ``mars.py`` whose ``MARS`` records its arguments): the row builds the class
    with the authors' routing and reports the checkout's commit."""
    from verify.gpu_bench import authors_code, build_model

    folder = tmp_path / "MARS" / "MARS" / "optimizers"
    folder.mkdir(parents=True)
    (folder / "mars.py").write_text(
        "import torch\n"
        "class MARS(torch.optim.SGD):\n"
        "    def __init__(self, params, lr, mars_type='mars-adamw', **kw):\n"
        "        super().__init__(params, lr=lr)\n"
        "        self.mars_type = mars_type\n")
    (tmp_path / "MARS" / "COMMIT").write_text("0123abcd\n")
    monkeypatch.setenv("OPTVERIFY_AUTHORS_CODE", str(tmp_path))
    model = build_model(CONFIGS["tiny"], "cpu")
    rows = authors_code(model, 4)
    shampoo = rows["authors MARS (mars-shampoo)"]
    assert shampoo.commit == "0123abcd"
    opt = shampoo()
    assert opt.mars_type == "mars-shampoo" and opt.param_groups[0]["lr"] == 3e-3
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in model.parameters())
    assert isinstance(rows["authors LDAdamW"], FileNotFoundError)


def test_paths_merge_and_readme_table():
    import pytest

    from verify.gpu_bench import merge, our_labels, readme_table, run

    assert our_labels(["adam", "galore_adamw"], ("reference", "fast", "compile")) == [
        "adam", "adam (fast)", "adam (compile)", "galore_adamw", "galore_adamw (fast)"]
    ref = run("cpu", ["tiny"], steady=2, train_model=None, names=["adam"], paths=["reference"], third_parties=False)
    fast = run("cpu", ["tiny"], steady=2, train_model=None, names=["adam"], paths=["fast"], third_parties=False)
    merged = merge([ref, fast])
    assert [r["optimizer"] for r in merged["step"]] == ["adam", "adam (fast)"]
    assert [(s["optimizer"], s["path"]) for s in merged["fast_speedups"]] == [("adam", "fast")]
    assert len(merged["meta"]["parts"]) == 2
    table = readme_table(merged, "tiny")
    assert table.splitlines()[2].startswith("| adam | ") and "ours, fast" in table.splitlines()[0]
    with pytest.raises(ValueError, match="more than one part"):
        merge([ref, ref])
    with pytest.raises(ValueError, match="different devices"):
        merge([ref, {**fast, "meta": {**fast["meta"], "device": "another"}}])
    with pytest.raises(ValueError, match="paths"):
        run("cpu", ["tiny"], paths=["fastest"])
