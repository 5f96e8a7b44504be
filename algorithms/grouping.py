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

:func:`paper_param_groups` ``(name, model, **hyper)`` is the one entry point for "route this model as
the paper of optimizer ``name`` did": it calls the ``param_groups(model, **hyper)`` function of the
optimizer's module when the module defines one (every low-rank method and SN-SM do), and otherwise
returns one group with every trainable parameter (methods that route inside the optimizer, such as
MARS's 2-D rule, or that have no routing at all, such as Adam).
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ._validation import check_choice

__all__ = ["RULES", "BLOCK_MARKERS", "HEAD_NAMES", "split_parameters", "param_groups", "paper_param_groups"]

RULES = ("attn_mlp", "all_linear", "all_2d")
BLOCK_MARKERS = ("attn", "attention", "mlp", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "fc1", "fc2")
HEAD_NAMES = ("lm_head", "head", "classifier", "output")


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


def paper_param_groups(name: str, model: nn.Module, **hyper: Any) -> list[dict[str, Any]]:
    """Parameter groups of ``model`` routed as the paper of registry optimizer ``name`` did (see module doc)."""
    import sys

    from ._registry import REGISTRY

    if name not in REGISTRY:
        raise ValueError(f"unknown optimizer {name!r}; registered: {sorted(REGISTRY)}")
    routing = getattr(sys.modules[REGISTRY[name].__module__], "param_groups", None)
    if routing is not None:
        return routing(model, **hyper)
    members = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for _, p in members], "param_names": [n for n, _ in members], **hyper}]
