"""The LLaMA configurations of memory.md §2 as parameter-shape lists (no weights allocated), and each
paper's parameter routing, for model-level memory totals.

Shapes follow ``nn.Linear``'s ``(out, in)`` layout of the GaLore repository's LLaMA (and of
paper_checks/gpu_lm/model.py): per layer ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (h × h),
``gate_proj``, ``up_proj`` (f × h), ``down_proj`` (h × f), two RMSNorm vectors (h); then the embedding
(V × h), the final norm (h) and an untied ``lm_head`` (V × h). Parameter count
:math:`P = L(4h^2 + 3hf + 2h) + 2Vh + h` (memory.md §2).

Routing (memory.md "Pitfalls: Grouping"; the rules of :mod:`algorithms.grouping`):

=============  ==================================================================  ========================
rule           low-rank / method group                                             papers
=============  ==================================================================  ========================
``attn_mlp``   attention and MLP matrices; embedding, lm_head, norms dense         GaLore, Fira, LDAdam,
                                                                                    AdaRankGrad (assumed)
``all_linear`` every ``nn.Linear`` weight **including lm_head**; embedding, norms   SN-SM
               dense
``all_2d``     every 2-D tensor (embedding and lm_head included); norms dense       MARS (official)
``dense``      one group, every parameter                                          Adam, SGD, AdaGrad, Lion;
                                                                                    MARS (routes inside the
                                                                                    optimizer: 2-D → MARS)
=============  ==================================================================  ========================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LlamaShape", "LLAMA_CONFIGS", "GALORE_RANKS", "ParamSpec", "llama_param_specs", "parameter_count",
           "ROUTING_RULES", "PAPER_ROUTING", "route", "routed_groups", "group_options"]


@dataclass(frozen=True)
class LlamaShape:
    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int = 32000
    max_sequence_length: int = 1024


#: GaLore repository ``configs/llama_*.json`` (memory.md §2) [C]
LLAMA_CONFIGS: dict[str, LlamaShape] = {
    "llama-60m": LlamaShape("llama-60m", 512, 1376, 8, 8),
    "llama-130m": LlamaShape("llama-130m", 768, 2048, 12, 12),
    "llama-350m": LlamaShape("llama-350m", 1024, 2736, 24, 16),
    "llama-1b": LlamaShape("llama-1b", 2048, 5461, 24, 32),
    "llama-7b": LlamaShape("llama-7b", 4096, 11008, 32, 32, max_sequence_length=2048),
}

#: GaLore Table 2 ranks (7B: 1024, §5.5) — memory.md §3
GALORE_RANKS = {"llama-60m": 128, "llama-130m": 256, "llama-350m": 256, "llama-1b": 512, "llama-7b": 1024}


@dataclass(frozen=True)
class ParamSpec:
    name: str
    shape: tuple[int, ...]
    role: str  # "attn", "mlp", "embed", "lm_head", "norm"


def llama_param_specs(cfg: LlamaShape) -> list[ParamSpec]:
    """Every parameter of the model as ``(name, shape, role)``, in ``named_parameters()`` order."""
    h, f = cfg.hidden, cfg.intermediate
    specs = [ParamSpec("embed_tokens.weight", (cfg.vocab, h), "embed")]
    for i in range(cfg.layers):
        pre = f"layers.{i}."
        specs.append(ParamSpec(pre + "attn_norm.weight", (h,), "norm"))
        specs += [ParamSpec(pre + f"{x}_proj.weight", (h, h), "attn") for x in "qkvo"]
        specs.append(ParamSpec(pre + "mlp_norm.weight", (h,), "norm"))
        specs += [ParamSpec(pre + "gate_proj.weight", (f, h), "mlp"), ParamSpec(pre + "up_proj.weight", (f, h), "mlp"),
                  ParamSpec(pre + "down_proj.weight", (h, f), "mlp")]
    specs.append(ParamSpec("norm.weight", (h,), "norm"))
    specs.append(ParamSpec("lm_head.weight", (cfg.vocab, h), "lm_head"))
    return specs


def parameter_count(cfg: LlamaShape) -> int:
    """:math:`P = L(4h^2 + 3hf + 2h) + 2Vh + h`."""
    h, f = cfg.hidden, cfg.intermediate
    return cfg.layers * (4 * h * h + 3 * h * f + 2 * h) + 2 * cfg.vocab * h + h


ROUTING_RULES = ("attn_mlp", "all_linear", "all_2d", "dense")


def route(spec: ParamSpec, rule: str) -> bool:
    """True when ``spec`` goes to the method's (low-rank / SN) group under ``rule``."""
    if rule == "attn_mlp":
        return spec.role in ("attn", "mlp")
    if rule == "all_linear":
        return spec.role in ("attn", "mlp", "lm_head")
    if rule == "all_2d":
        return len(spec.shape) == 2
    if rule == "dense":
        return False
    raise ValueError(f"rule must be one of {ROUTING_RULES}, got {rule!r}")


#: per algorithm: the routing rule of its paper, the options of the method group (``{rank}`` is filled
#: with the model's rank) and of the dense group
PAPER_ROUTING: dict[str, dict[str, Any]] = {
    "galore_adamw": {"rule": "attn_mlp", "method": {"rank": "{rank}"}, "dense": {"lowrank": False}},
    "fira_adamw": {"rule": "attn_mlp", "method": {"rank": "{rank}"}, "dense": {"lowrank": False}},
    "ldadam": {"rule": "attn_mlp", "method": {"rank": "{rank}"}, "dense": {"lowrank": False}},
    "adarankgrad": {"rule": "attn_mlp", "method": {"max_rank": "{rank}"}, "dense": {"lowrank": False}},
    "adam_sn_sm": {"rule": "all_linear", "method": {"rank": "{rank}", "subset_size": "heuristics"},
                   "dense": {"lowrank": False}},
    "subspace_momentum": {"rule": "all_linear", "method": {"rank": "{rank}"}, "dense": {"lowrank": False}},
    "adam_sn": {"rule": "all_linear", "method": {"subset_size": "heuristics"}, "dense": {"subset_size": "coordinate"}},
    "rmsprop_sn": {"rule": "all_linear", "method": {"subset_size": "heuristics"}, "dense": {"subset_size": "coordinate"}},
    "adagrad_subset_norm": {"rule": "all_linear", "method": {"subset_size": "heuristics"},
                            "dense": {"subset_size": "coordinate"}},
    "adam": {"rule": "dense", "method": {}, "dense": {}},
    "sgd": {"rule": "dense", "method": {}, "dense": {"momentum": 0.9}},
    "adagrad_norm": {"rule": "dense", "method": {}, "dense": {}},
    "adagrad_coordinate": {"rule": "dense", "method": {}, "dense": {}},
    "lion": {"rule": "dense", "method": {}, "dense": {}},
    # MARS routes inside the optimizer (mars.md §1.7): the official rule, exactly-2-D tensors MARS (the
    # embedding and lm_head included), everything else AdamW; approx estimator
    "mars_adamw": {"rule": "dense", "method": {}, "dense": {"optimize_1d": False, "estimator": "approx"}},
    "mars_lion": {"rule": "dense", "method": {}, "dense": {"optimize_1d": False, "estimator": "approx"}},
    "mars_shampoo": {"rule": "dense", "method": {}, "dense": {"optimize_1d": False, "estimator": "approx"}},
}


def _fill(options: dict[str, Any], rank: int) -> dict[str, Any]:
    return {key: (rank if value == "{rank}" else value) for key, value in options.items()}


def group_options(algorithm: str, rank: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(rule, method-group options, dense-group options)`` of ``algorithm`` at ``rank``."""
    if algorithm not in PAPER_ROUTING:
        raise KeyError(f"no paper routing for {algorithm!r}; add it to verify/memory/models.py PAPER_ROUTING")
    entry = PAPER_ROUTING[algorithm]
    return entry["rule"], _fill(entry["method"], rank), _fill(entry["dense"], rank)


def routed_groups(algorithm: str, model, rank: int) -> list[dict[str, Any]]:
    """Parameter groups of a real ``nn.Module`` routed as the paper did (through :mod:`algorithms.grouping`)."""
    from algorithms.grouping import param_groups

    rule, method, dense = group_options(algorithm, rank)
    if rule == "dense":
        names, params = zip(*[(n, q) for n, q in model.named_parameters() if q.requires_grad])
        return [{"params": list(params), "param_names": list(names), **dense}]
    return param_groups(model, rule, lowrank=method, dense=dense)
