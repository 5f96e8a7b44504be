"""algorithms/grouping.py: each paper's routing of a transformer's parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from algorithms.grouping import param_groups, split_parameters


class TinyBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.q_proj = nn.Linear(8, 8, bias=False)
        self.up_proj = nn.Linear(8, 16, bias=True)


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(11, 8)
        self.layers = nn.ModuleList([TinyBlock(), TinyBlock()])
        self.lm_head = nn.Linear(8, 11, bias=False)
        self.frozen = nn.Parameter(torch.zeros(3), requires_grad=False)


def names(pairs):
    return sorted(n for n, _ in pairs)


def test_attn_mlp_rule_keeps_head_embedding_norms_biases_dense():
    low, dense = split_parameters(TinyLM(), "attn_mlp")
    assert names(low) == sorted(f"layers.{i}.{m}.weight" for i in range(2) for m in ("q_proj", "up_proj"))
    assert "lm_head.weight" in names(dense) and "embed_tokens.weight" in names(dense)
    assert "layers.0.up_proj.bias" in names(dense) and "layers.1.norm.weight" in names(dense)
    assert "frozen" not in names(low) + names(dense)


def test_all_linear_rule_includes_lm_head():
    low, dense = split_parameters(TinyLM(), "all_linear")
    assert "lm_head.weight" in names(low)
    assert "embed_tokens.weight" in names(dense)


def test_all_2d_rule_takes_every_matrix():
    low, _ = split_parameters(TinyLM(), "all_2d")
    assert "embed_tokens.weight" in names(low) and "lm_head.weight" in names(low)
    assert all(p.dim() == 2 for _, p in low)


@pytest.mark.parametrize("rule", ["attn_mlp", "all_linear", "all_2d"])
def test_every_trainable_parameter_lands_in_exactly_one_group(rule):
    model = TinyLM()
    groups = param_groups(model, rule, lowrank={"rank": 2}, dense={"lowrank": False})
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters() if p.requires_grad}
    assert groups[0]["rank"] == 2 and groups[-1]["lowrank"] is False
    for g in groups:
        assert len(g["param_names"]) == len(g["params"])


def test_groups_work_with_a_torch_optimizer():
    model = TinyLM()
    opt = torch.optim.AdamW(param_groups(model, "attn_mlp", lowrank={"lr": 0.1}))
    assert opt.param_groups[0]["lr"] == 0.1


def test_unknown_rule():
    with pytest.raises(ValueError, match="rule"):
        split_parameters(TinyLM(), "everything")


def test_paper_param_groups_reads_the_routing_declared_on_the_class():
    import algorithms
    from algorithms.grouping import Routing, paper_param_groups, routing_of

    model = TinyLM()
    dense = paper_param_groups("adam", model, weight_decay=0.1)
    assert len(dense) == 1 and dense[0]["weight_decay"] == 0.1
    assert len(dense[0]["params"]) == sum(1 for p in model.parameters() if p.requires_grad)
    for name, cls in algorithms.REGISTRY.items():
        assert isinstance(cls.paper_routing, Routing), name
        groups = paper_param_groups(name, model)
        assert paper_param_groups(cls, model)[0]["param_names"] == groups[0]["param_names"], name
        ids = [id(p) for g in groups for p in g["params"]]
        assert sorted(ids) == sorted(id(p) for p in model.parameters() if p.requires_grad), name
        routing = routing_of(name)
        assert len(groups) == (1 if routing.rule == "single" else 2), name
        for key, value in routing.method.items():
            assert groups[0][key] == value, (name, key)
    with pytest.raises(ValueError, match="unknown optimizer"):
        paper_param_groups("nope", model)


def test_paper_param_groups_options_go_to_the_method_group_and_dense_to_the_other():
    from algorithms.grouping import paper_param_groups

    low, rest = paper_param_groups("galore_adamw", TinyLM(), rank=2, dense={"weight_decay": 0.0})
    assert low["rank"] == 2 and "rank" not in rest
    assert rest == {**rest, "lowrank": False, "weight_decay": 0.0}
    with pytest.raises(ValueError, match="one group"):
        paper_param_groups("adam", TinyLM(), dense={"lr": 1.0})


def test_routing_rejects_unknown_rules_and_dense_options_of_a_single_group():
    from algorithms.grouping import Routing, routing_of

    with pytest.raises(ValueError, match="rule"):
        Routing("everything")
    with pytest.raises(ValueError, match="single"):
        Routing("single", dense={"lowrank": False})
    with pytest.raises(TypeError, match="paper_routing"):
        routing_of(torch.optim.AdamW)
