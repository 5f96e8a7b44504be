"""LLaMA shape lists, model totals against docs/memory.md §2–4, the paper-table comparison, the committed
results files, the `verify memory` command and the memory suite checks (each shown to fail on a mutant)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import algorithms
import algorithms.adam as adam_module
from algorithms.grouping import paper_param_groups, routing_of, split_parameters
from synthetic.llama import Llama, LlamaConfig
from verify.checks import memory as memory_checks
from verify.cli import main
from verify.memory import formulas as F
from verify.methods import galore_fira, sn_sm
from verify.memory import models as M
from verify.memory import totals as T
from verify.memory.paper_tables import all_comparisons, gpt2_small

RESULTS = Path(__file__).resolve().parents[2] / "results" / "memory"


# ----------------------------------------------------------------------------- shapes and routing
@pytest.mark.parametrize("name", list(M.LLAMA_CONFIGS))
def test_parameter_count_formula_equals_the_meta_model(name):
    cfg = M.LLAMA_CONFIGS[name]
    model = M.meta_model(cfg)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == M.parameter_count(cfg)


def test_parameter_counts_of_memory_md():
    counts = {name: round(M.parameter_count(cfg) / 1e6, 1) for name, cfg in M.LLAMA_CONFIGS.items()}
    assert counts == {"llama-60m": 58.1, "llama-130m": 134.1, "llama-350m": 368.0, "llama-1b": 1339.1, "llama-7b": 6738.4}
    assert M.parameter_count(M.LLAMA_CONFIGS["llama-1b"]) == 1_339_082_752
    # GaLore issue #67: 367.97M total and 302.38M GaLore-enabled parameters at 350M
    cfg = M.LLAMA_CONFIGS["llama-350m"]
    projected = sum(p.numel() for p in _method_group(M.table_groups("galore_adamw", M.meta_model(cfg), 256)))
    assert round(projected / 1e6, 2) == 302.38 and round(M.parameter_count(cfg) / 1e6, 2) == 367.97


def _method_group(groups):
    return [p for g in groups if g.get("lowrank", True) is not False for p in g["params"]]


def test_unknown_model_and_routing_errors():
    with pytest.raises(ValueError, match="model"):
        M.resolve_model("llama-3b")
    with pytest.raises(ValueError, match="unknown optimizer"):
        M.table_groups("nope", M.meta_model(M.LLAMA_CONFIGS["llama-60m"]), 4)
    with pytest.raises(ValueError, match="dense"):
        M.table_groups("adam", M.meta_model(M.LLAMA_CONFIGS["llama-60m"]), None, dense_options={"lr": 1.0})


# ----------------------------------------------------------------------------- totals vs docs/memory.md §3
def test_sn_sm_llama_1b_arithmetic_exact():
    cfg = M.LLAMA_CONFIGS["llama-1b"]
    snsm = T.model_totals("adam_sn_sm", cfg, rank=512)
    assert T.model_totals("adam", cfg).states == 2_678_165_504
    assert T.model_totals("adam_sn", cfg).states == 1_405_340_904
    assert snsm.states == 450_256_104 and snsm.projectors == 177_209_344
    assert round(snsm.state_bytes(2, projectors=False) / T.GIB, 3) == 0.839
    assert round(snsm.state_bytes(2) / T.GIB, 3) == 1.169


def test_galore_saving_at_1b_is_fira_61_percent():
    adam, galore = T.model_totals("adam", "1b"), T.model_totals("galore_adamw", "1b")
    assert round(100 * (1 - galore.elements() / adam.states), 1) == 61.1


def test_ldadam_error_feedback_counted_separately():
    t = T.model_totals("ldadam", "60m")
    cfg = M.LLAMA_CONFIGS["llama-60m"]
    projected = sum(p.numel() for p in _method_group(M.table_groups("ldadam", M.meta_model(cfg), 128)))
    assert t.error_feedback == projected
    assert t.elements(error_feedback=False) == T.model_totals("galore_adamw", "60m").elements()


def test_mars_per_element_ratios():
    assert round(sum(p.numel() for p in gpt2_small().parameters()) / 1e6, 1) == 124.4
    t = T.mars_totals("mars_adamw_exact", "1b", "official")
    adam = T.model_totals("adam", "1b")
    assert round(t.states / adam.states, 3) == 2.0
    with pytest.raises(ValueError, match="variant"):
        T.mars_totals("mars_sgd", "1b")


# ----------------------------------------------------------------------------- paper comparison
def test_paper_comparison_verdicts():
    out = all_comparisons()
    cells = out["cells"]
    by = {(c["source"].split(" (")[0], c["model"], c["entry"]): c for c in cells}
    for algo in ("adam", "adam_sn", "adam_sn_sm"):
        assert by[("SN-SM README figure, LLaMA-1B optimizer states", "llama-1b", algo)]["verdict"] == "match"
    assert by[("SN-SM README figure, LLaMA-1B optimizer states", "llama-1b", "adam_sn_sm")]["matches"] == \
        ["bf16 without projectors, GiB"]  # the 0.84 GB leaves the projectors out, in GiB
    # GaLore Table 6b's GaLore column is not reproducible by any accounting (docs/memory.md §4)
    for model in ("llama-60m", "llama-130m", "llama-350m", "llama-1b"):
        cell = by[("GaLore Table 6b", model, "GaLore")]
        assert cell["verdict"] == "mismatch" and "elements" in cell["reason"]
    assert by[("GaLore Table 6b", "llama-350m", "full rank")]["matches"] == ["config P=368.0M in GiB"]
    for c in cells:
        assert c["reason"], c
        if c["source"].startswith("MARS"):
            # the official/minimal per-element counts reproduce 1.5x and 2x; the toolkit's exact estimator keeps
            # one buffer (x_prev) where the official code keeps two, so it is 1.5x, a documented mismatch
            assert c["verdict"] == ("mismatch" if c["entry"] == "mars_adamw exact (toolkit)" else "match"), c
    consensus = out["implied_parameter_counts"]
    assert consensus["llama-350m"]["GiB"]["config_inside"]
    assert not consensus["llama-1b"]["GB"]["config_inside"] and consensus["llama-1b"]["GB"]["interval"] is not None


def test_committed_results_are_current():
    """results/memory/*.json are regenerated by `verify memory --write results/memory`; they must not be stale."""
    committed = json.loads((RESULTS / "paper_comparison.json").read_text())
    fresh = all_comparisons()
    assert committed["summary"] == fresh["summary"]
    assert [c["verdict"] for c in committed["cells"]] == [c["verdict"] for c in fresh["cells"]]
    totals = json.loads((RESULTS / "model_totals.json").read_text())
    assert set(totals["models"]) == set(M.LLAMA_CONFIGS)
    row = next(r for r in totals["models"]["llama-1b"] if r["algorithm"] == "adam_sn_sm")
    assert row["states"] == T.model_totals("adam_sn_sm", "1b").states


# ----------------------------------------------------------------------------- CLI
def test_verify_memory_prints_the_llama_1b_table(capsys):
    assert main(["memory", "--model", "llama-1b"]) == 0
    out = capsys.readouterr().out
    assert "llama-1b" in out and "1,339,082,752" in out
    for name in ("adam_sn_sm", "galore_adamw", "ldadam", "mars_adamw_exact [official]"):
        assert name in out
    assert "0.839" in out and "4.988" in out


def test_verify_memory_json_compare_and_bad_model(capsys, tmp_path):
    assert main(["memory", "--model", "60m", "--json", "--dtype", "fp32"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["bytes_per_element"] == 4
    assert main(["memory", "--compare"]) == 0
    assert "cells reproduced" in capsys.readouterr().out
    assert main(["memory", "--model", "llama-2b"]) == 2
    assert main(["memory", "--write", str(tmp_path)]) == 0
    assert (tmp_path / "model_totals.json").exists() and (tmp_path / "paper_comparison.json").exists()


# ----------------------------------------------------------------------------- suite checks and mutants
def test_memory_checks_pass_on_real_code():
    for fn in (memory_checks.snsm_llama_1b, memory_checks.galore_llama_table):
        outcome = fn(True)
        ok, detail = outcome.outcome == "PASS", outcome.reason
        assert ok, detail


def test_state_check_fails_on_an_extra_buffer(monkeypatch):
    real_init = adam_module.Adam._init_state

    def with_scratch(self, p, group, state):
        real_init(self, p, group, state)
        state["scratch"] = torch.zeros_like(p)

    monkeypatch.setattr(adam_module.Adam, "_init_state", with_scratch)
    outcome = memory_checks.state_equals_formula(True)
    ok, detail = outcome.outcome == "PASS", outcome.reason
    assert not ok and "adam" in detail


def test_snsm_check_fails_on_wrong_subset_rule(monkeypatch):
    real = F.subset_count

    def along_the_smaller_dim(shape, rule):
        kk, c = real(shape, rule)
        return (c, kk) if rule == "heuristics" and len(shape) == 2 else (kk, c)

    monkeypatch.setattr(sn_sm, "subset_count", along_the_smaller_dim)  # where the SN formulas call it
    outcome = memory_checks.snsm_llama_1b(True)
    ok, detail = outcome.outcome == "PASS", outcome.reason
    assert not ok and "adam_sn" in detail


def test_galore_table_check_fails_on_wrong_side(monkeypatch):
    real = F.side_rule
    monkeypatch.setattr(galore_fira, "side_rule",  # where the GaLore formulas call it
                        lambda mm, nn, rule, square: "right" if real(mm, nn, rule, square) == "left" else "left")
    outcome = memory_checks.galore_llama_table(True)
    assert outcome.outcome == "FAIL", outcome.reason


@pytest.mark.parametrize("name", sorted(algorithms.REGISTRY))
def test_memory_totals_route_the_model_as_paper_param_groups(name):
    """One routing source: the memory totals count the groups that paper_param_groups gives a real LLaMA (the
    one the GPU recipes build), group for group, for every registered optimizer."""
    cfg = LlamaConfig(vocab=64, dim=32, layers=2, heads=4, ffn=88, max_seq=8)
    real = paper_param_groups(name, Llama(cfg), **_rank_option(name, 4))
    meta = M.table_groups(name, M.meta_model(cfg), 4)
    assert [g["param_names"] for g in meta] == [g["param_names"] for g in real]
    table_only = set(M.TABLE_OPTIONS.get(name, {}))
    for ours, theirs in zip(meta, real):
        assert {k: v for k, v in ours.items() if k not in ("params", "param_names") and k not in table_only} == \
            {k: v for k, v in theirs.items() if k not in ("params", "param_names")}
    totals = T.model_totals(name, cfg, rank=4)
    assert totals.options["rule"] == routing_of(name).rule


def _rank_option(name, rank):
    option = routing_of(name).rank_option
    return {option: rank} if option else {}


@pytest.mark.parametrize("name", ["adam_sn", "rmsprop_sn", "adagrad_subset_norm", "subspace_momentum", "adam_sn_sm"])
def test_sn_sm_methods_split_every_linear_weight_from_the_rest(name):
    """The SN-SM experiments route every nn.Linear weight (lm_head included) to the method and the embedding and
    norms to the dense group: two groups on a LLaMA (one routing in memory tables and GPU runs alike)."""
    model = Llama(LlamaConfig(vocab=64, dim=32, layers=2, heads=4, ffn=88, max_seq=8))
    groups = paper_param_groups(name, model, **_rank_option(name, 4))
    assert len(groups) == 2
    linear = {n for n, _ in split_parameters(model, "all_linear")[0]}
    assert set(groups[0]["param_names"]) == linear and "lm_head.weight" in linear
    assert "embed_tokens.weight" in groups[1]["param_names"]
