"""The LLaMA configurations of GaLore's experiments, built on the ``meta`` device for model-level memory totals.

The model is :class:`synthetic.llama.Llama` (the one the GPU runs train); a configuration here only
names its sizes (GaLore repository ``configs/llama_*.json``: vocabulary 32000, untied ``lm_head``,
SwiGLU MLP, RMSNorm). :func:`meta_model` builds it on the ``meta`` device (no weights allocated), and
:func:`table_groups` routes it with :func:`algorithms.grouping.paper_param_groups`, the function the GPU
recipes use, so the memory totals count exactly the tensors and groups a real run has.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn as nn

from algorithms.grouping import paper_param_groups, routing_of
from synthetic.llama import Llama, LlamaConfig, parameter_count

__all__ = ["LLAMA_CONFIGS", "GALORE_RANKS", "TABLE_OPTIONS", "parameter_count", "resolve_model", "model_name",
           "meta_model", "table_groups"]


def _galore_config(dim: int, ffn: int, layers: int, heads: int, max_seq: int = 1024) -> LlamaConfig:
    return LlamaConfig(vocab=32000, dim=dim, layers=layers, heads=heads, ffn=ffn, max_seq=max_seq)


#: GaLore repository ``configs/llama_*.json`` [C]
LLAMA_CONFIGS: dict[str, LlamaConfig] = {
    "llama-60m": _galore_config(512, 1376, 8, 8),
    "llama-130m": _galore_config(768, 2048, 12, 12),
    "llama-350m": _galore_config(1024, 2736, 24, 16),
    "llama-1b": _galore_config(2048, 5461, 24, 32),
    "llama-7b": _galore_config(4096, 11008, 32, 32, max_seq=2048),
}

#: GaLore Table 2 ranks (7B: 1024, GaLore §5.5)
GALORE_RANKS = {"llama-60m": 128, "llama-130m": 256, "llama-350m": 256, "llama-1b": 512, "llama-7b": 1024}

#: options of the memory tables beyond each paper's routing: the SGD row counts a momentum buffer
TABLE_OPTIONS: dict[str, dict[str, Any]] = {"sgd": {"momentum": 0.9}}


def resolve_model(model: str | LlamaConfig) -> LlamaConfig:
    """A configuration by name (``"llama-1b"``, ``"1b"``) or as given."""
    if isinstance(model, LlamaConfig):
        return model
    key = model.lower()
    if not key.startswith("llama-"):
        key = "llama-" + key
    if key not in LLAMA_CONFIGS:
        raise ValueError(f"model must be one of {sorted(LLAMA_CONFIGS)}, got {model!r}")
    return LLAMA_CONFIGS[key]


def model_name(cfg: LlamaConfig) -> str:
    """The name of a GaLore configuration, or a description of another one."""
    for name, known in LLAMA_CONFIGS.items():
        if known == cfg:
            return name
    return f"llama(dim={cfg.dim}, ffn={cfg.ffn}, layers={cfg.layers}, vocab={cfg.vocab})"


@lru_cache(maxsize=None)
def meta_model(cfg: LlamaConfig) -> nn.Module:
    """The model of ``cfg`` on the ``meta`` device: every parameter's shape, no storage."""
    with torch.device("meta"):
        return Llama(cfg)


def table_groups(algorithm: str, model: nn.Module, rank: int | None, *, method_options: dict[str, Any] | None = None,
                 dense_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The parameter groups of the memory tables: the paper's routing (:func:`paper_param_groups`) at
    ``rank`` (filling the method's ``rank_option``), with :data:`TABLE_OPTIONS` and the given overrides."""
    routing = routing_of(algorithm)
    options = dict(TABLE_OPTIONS.get(algorithm, {}))
    if routing.rank_option is not None and rank is not None:
        options[routing.rank_option] = rank
    options.update(method_options or {})
    if routing.rule == "single":
        if dense_options:
            raise ValueError(f"{algorithm} routes every parameter to one group: dense options do not apply")
        return paper_param_groups(algorithm, model, **options)
    return paper_param_groups(algorithm, model, dense=dense_options, **options)
