"""Split an ``nn.Module``'s parameters into a low-rank group and a dense group, the way each paper did.

Rules (``rule=``):

``"attn_mlp"`` (GaLore, Fira, LDAdam; AdaRankGrad is assumed to follow GaLore)
    the weights of ``nn.Linear`` modules *inside the transformer blocks* (attention and MLP
    projections) are low-rank; embeddings, ``lm_head``, norms and biases are dense. A linear module
    counts as a block module when its qualified name contains one of :data:`BLOCK_MARKERS`
    (``attn``, ``mlp``, ``q_proj`` … ``down_proj``) and is not an output head (:data:`HEAD_NAMES`).
``"all_linear"`` (SN-SM, ``get_optimizer.py``)
    every ``nn.Linear`` weight, **including** ``lm_head``; everything else dense.
``"all_2d"`` (MARS's official routing)
    every parameter with exactly two dimensions; everything else dense.

The result is a list of ``torch.optim`` parameter-group dicts carrying ``param_names`` (so error
messages name parameters), ready for any optimizer in :mod:`algorithms`::

    groups = param_groups(model, "attn_mlp", lowrank={"rank": 128}, dense={"lowrank": False})
    opt = algorithms.make("galore_adamw", groups, lr=1e-2)

Each low-rank optimizer documents the group key that switches a group to dense AdamW (``lowrank``).

``"single"``
    one group with every trainable parameter (methods without routing, such as Adam, and methods that
    route inside the optimizer, such as MARS's 2-D rule).

Each optimizer class declares its paper's routing as data, ``paper_routing = Routing(rule, method=...,
dense=..., rank_option=...)``; :func:`paper_param_groups` ``(name or class, model, **options)`` is the
one entry point for "route this model as the paper of this optimizer did", for the GPU recipes and for
the memory totals alike (:mod:`verify.memory.totals` routes a LLaMA built on the ``meta`` device with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch.nn as nn

from .validation import check_choice

__all__ = ["RULES", "ROUTING_RULES", "BLOCK_MARKERS", "HEAD_NAMES", "Routing", "split_parameters", "param_groups",
           "paper_param_groups", "routing_of"]

RULES = ("attn_mlp", "all_linear", "all_2d")
#: the rules a method may declare: a split (:data:`RULES`) or one group
ROUTING_RULES = RULES + ("single",)
BLOCK_MARKERS = ("attn", "attention", "mlp", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "fc1", "fc2")
HEAD_NAMES = ("lm_head", "head", "classifier", "output")


@dataclass(frozen=True)
class Routing:
    """A paper's routing of a model's parameters: the rule, and the options of each group.

    ``method`` holds the options of the method's group (the low-rank / Subset-Norm group; for
    ``rule="single"`` the one group), ``dense`` those of the other parameters. ``rank_option`` names the
    method-group option that a model-level rank fills (``"rank"``, AdaRankGrad's ``"max_rank"``; ``None``
    for methods without a rank). ``source`` says where the rule was read.
    """

    rule: str = "single"
    method: Mapping[str, Any] = field(default_factory=dict)
    dense: Mapping[str, Any] = field(default_factory=dict)
    rank_option: str | None = None
    source: str = "no routing: one group"

    def __post_init__(self) -> None:
        check_choice("rule", self.rule, ROUTING_RULES)
        if self.rule == "single" and self.dense:
            raise ValueError("a single-group routing has no dense group; put its options in method=")


def _is_block_linear(name: str) -> bool:
    parts = name.split(".")
    if parts[-1] in HEAD_NAMES:
        return False
    return any(marker in part for part in parts for marker in BLOCK_MARKERS)


def split_parameters(model: nn.Module, rule: str) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """``(lowrank, dense)`` lists of ``(qualified name, parameter)``; every trainable parameter lands in exactly one."""
    check_choice("rule", rule, RULES)
    chosen: dict[int, str] = {}
    if rule == "all_2d":
        chosen = {id(p): n for n, p in model.named_parameters() if p.dim() == 2}
    else:
        for mod_name, mod in model.named_modules():
            if not isinstance(mod, nn.Linear):
                continue
            if rule == "attn_mlp" and not _is_block_linear(mod_name):
                continue
            chosen[id(mod.weight)] = f"{mod_name}.weight" if mod_name else "weight"
    lowrank, dense = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (lowrank if id(p) in chosen else dense).append((name, p))
    return lowrank, dense


def param_groups(
    model: nn.Module,
    rule: str,
    *,
    lowrank: dict[str, Any] | None = None,
    dense: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Two parameter groups (empty ones are dropped): the low-rank one with the options ``lowrank``, the
    dense one with ``dense``."""
    low, den = split_parameters(model, rule)
    groups = []
    for members, options in ((low, lowrank or {}), (den, dense or {})):
        if members:
            groups.append({"params": [p for _, p in members], "param_names": [n for n, _ in members], **options})
    return groups


def routing_of(optimizer: str | type) -> Routing:
    """The :class:`Routing` declared by a registered optimizer (its name or its class)."""
    from ._registry import REGISTRY

    if isinstance(optimizer, str):
        if optimizer not in REGISTRY:
            raise ValueError(f"unknown optimizer {optimizer!r}; registered: {sorted(REGISTRY)}")
        optimizer = REGISTRY[optimizer]
    routing = getattr(optimizer, "paper_routing", None)
    if not isinstance(routing, Routing):
        raise TypeError(f"{getattr(optimizer, '__name__', optimizer)!r} declares no paper_routing (a Routing)")
    return routing


def paper_param_groups(optimizer: str | type, model: nn.Module, *, dense: dict[str, Any] | None = None,
                       **options: Any) -> list[dict[str, Any]]:
    """Parameter groups of ``model`` routed as the paper of ``optimizer`` (a registry name or an optimizer
    class) did: its :class:`Routing` rule, the routing's group options, then ``options`` on the method's
    group and ``dense`` on the other one (for a single-group routing ``options`` go to the one group).

    ``paper_param_groups("galore_adamw", model, rank=128)`` gives the attention/MLP weights with
    ``rank=128`` and everything else with ``lowrank=False``."""
    routing = routing_of(optimizer)
    method_options = {**routing.method, **options}
    if routing.rule == "single":
        if dense:
            raise ValueError(f"{optimizer!r} routes every parameter to one group; pass its options without dense=")
        members = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        return [{"params": [p for _, p in members], "param_names": [n for n, _ in members], **method_options}]
    return param_groups(model, routing.rule, lowrank=method_options, dense={**routing.dense, **(dense or {})})
