"""A hidden-Markov byte language with an exactly computable optimal loss.

Source: ``H`` hidden states; sparse transition rows (each state moves to ``fan_out`` successors
with Dirichlet(α) weights); each state emits bytes from its own sparse distribution over
``emit_support`` symbols. A predictor that knows the model attains, on a stream ``x_{1:N}``, the
cross-entropy ``-(1/N) Σ log p(x_t | x_{<t})``, computed exactly by the normalized forward
algorithm. No model can do better in expectation, so ``eval_loss − optimal_loss`` is the
optimality gap of a trained network (up to the finite-sample error of the evaluation stream).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class HMMSpec:
    states: int = 128
    vocab: int = 256
    fan_out: int = 4
    emit_support: int = 12
    alpha: float = 0.5
    seed: int = 1234


class HMMLanguage:
    def __init__(self, spec: HMMSpec = HMMSpec(), device: str | torch.device = "cpu"):
        if spec.fan_out > spec.states or spec.emit_support > spec.vocab:
            raise ValueError("fan_out must be <= states and emit_support <= vocab")
        self.spec = spec
        self.device = torch.device(device)
        g = torch.Generator().manual_seed(spec.seed)
        self.transition = self._sparse_rows(spec.states, spec.states, spec.fan_out, spec.alpha, g)
        self.emission = self._sparse_rows(spec.states, spec.vocab, spec.emit_support, spec.alpha, g)
        self.initial = torch.full((spec.states,), 1.0 / spec.states, dtype=torch.float64)
        self.transition = self.transition.to(self.device)
        self.emission = self.emission.to(self.device)
        self.initial = self.initial.to(self.device)

    @staticmethod
    def _sparse_rows(rows: int, cols: int, support: int, alpha: float, g: torch.Generator) -> torch.Tensor:
        out = torch.zeros(rows, cols, dtype=torch.float64)
        for i in range(rows):
            idx = torch.randperm(cols, generator=g)[:support]
            w = torch._standard_gamma(torch.full((support,), alpha, dtype=torch.float64), generator=g)
            out[i, idx] = w / w.sum()
        return out

    def sample(self, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """``batch`` independent streams of ``length`` bytes (int64, on the language's device)."""
        dev = self.device
        state = torch.multinomial(self.initial.expand(batch, -1), 1, generator=generator).squeeze(1)
        out = torch.empty(batch, length, dtype=torch.int64, device=dev)
        for t in range(length):
            out[:, t] = torch.multinomial(self.emission[state], 1, generator=generator).squeeze(1)
            state = torch.multinomial(self.transition[state], 1, generator=generator).squeeze(1)
        return out

    def optimal_loss(self, tokens: torch.Tensor, skip_first: int = 1) -> float:
        """Mean ``-log p(x_t | x_<t)`` (nats) under the true model, by the normalized forward algorithm.

        Each row of ``tokens`` is an independent stream started from the initial distribution; the
        value averages over positions ``t >= skip_first`` of every row — the positions a language
        model is scored on (position 0 has no context and is not predicted).
        """
        tokens = tokens.to(self.device)
        belief = self.initial.expand(tokens.shape[0], -1).clone()  # p(state_t | x_<t)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for t in range(tokens.shape[1]):
            emit = self.emission[:, tokens[:, t]].T  # p(x_t | state)
            joint = belief * emit
            p = joint.sum(1)
            if t >= skip_first:
                total = total - torch.log(p).sum()
            belief = (joint / p[:, None]) @ self.transition
        return float(total / (tokens.shape[0] * (tokens.shape[1] - skip_first)))
