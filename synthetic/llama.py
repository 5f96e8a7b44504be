"""The LLaMA-style decoder of GaLore's experiments (RMSNorm, SwiGLU MLP, rotary attention, untied ``lm_head``).

One model for every user: the GPU training run (:mod:`paper_checks.gpu_lm`, GaLore's 60M shape with
bytes as tokens, the default :class:`LlamaConfig`), the GPU memory measurement and the model-level
memory totals (:mod:`verify.memory`), which build the GaLore configurations on the ``meta`` device
and route their parameters with :func:`algorithms.grouping.paper_param_groups`, so the totals count
exactly the tensors a real model has.

Parameters, in ``named_parameters()`` order: ``embed_tokens`` (V × h); per layer ``attn_norm`` (h),
``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (h × h), ``mlp_norm`` (h), ``gate_proj``, ``up_proj``
(f × h), ``down_proj`` (h × f); the final ``norm`` (h) and ``lm_head`` (V × h) (:func:`parameter_count`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class LlamaConfig:
    vocab: int = 256
    dim: int = 512
    layers: int = 8
    heads: int = 8
    ffn: int = 1376
    max_seq: int = 256
    norm_eps: float = 1e-6


def parameter_count(cfg: LlamaConfig) -> int:
    """:math:`P = L(4h^2 + 3hf + 2h) + 2Vh + h` (h = ``dim``, f = ``ffn``, V = ``vocab``, L = ``layers``)."""
    h, f = cfg.dim, cfg.ffn
    return cfg.layers * (4 * h * h + 3 * h * f + 2 * h) + 2 * cfg.vocab * h + h


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.heads = cfg.heads
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.q_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.o_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.mlp_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.gate_proj = nn.Linear(cfg.dim, cfg.ffn, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.ffn, bias=False)
        self.down_proj = nn.Linear(cfg.ffn, cfg.dim, bias=False)

    def forward(self, x, cos, sin):
        b, t, d = x.shape
        h = self.attn_norm(x)
        q, k, v = (proj(h).view(b, t, self.heads, d // self.heads).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        q, k = rotary(q, cos, sin), rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o_proj(y.transpose(1, 2).reshape(b, t, d))
        h = self.mlp_norm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig = LlamaConfig()):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab, bias=False)
        head_dim = cfg.dim // cfg.heads
        inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        ang = torch.outer(torch.arange(cfg.max_seq).float(), inv)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.embed_tokens(tokens)
        cos, sin = self.cos[:t], self.sin[:t]
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))

    def loss(self, tokens):
        """Next-byte cross-entropy (nats), predicting x_{t+1} from x_{≤t}."""
        logits = self(tokens[:, :-1])
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
