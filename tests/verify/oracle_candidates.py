"""Candidate optimizers for the oracle tests: correct ones and ones with a planted deviation.

Each planted deviation is a realistic bug or convention change, written from the math (not from
any package), so the tests can assert the step at which the oracle must report it.
"""

from __future__ import annotations

import math

import torch

import algorithms


class AdamWrongBiasCorrection(torch.optim.Optimizer):
    """A planted bug: the second-moment bias correction uses β1 instead of β2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["t"] += 1
                st["m"].lerp_(p.grad, 1 - b1)
                st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (st["v"] / (1 - b1 ** st["t"])).sqrt() + group["eps"]
                p.add_(st["m"] / (1 - b1 ** st["t"]) / denom, alpha=-group["lr"])


class AdamWTurnsNaN(torch.optim.AdamW):
    """torch's AdamW that fills its parameters with NaN from step ``nan_from`` on."""

    def __init__(self, params, nan_from=5, **kwargs):
        super().__init__(params, **kwargs)
        self.nan_from, self.calls = nan_from, 0

    @torch.no_grad()
    def step(self, closure=None):
        self.calls += 1
        super().step(closure)
        if self.calls >= self.nan_from:
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("nan"))


class AdamWFlatMoments(torch.optim.AdamW):
    """torch's AdamW that keeps ``exp_avg`` flattened between steps (right values, wrong shape)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and "exp_avg" in st:
                    st["exp_avg"] = st["exp_avg"].reshape(p.shape)
        super().step(closure)
        for st in self.state.values():
            st["exp_avg"] = st["exp_avg"].reshape(-1)


class AdamWCrashes(torch.optim.AdamW):
    def __init__(self, params, crash_at=3, **kwargs):
        super().__init__(params, **kwargs)
        self.crash_at, self.calls = crash_at, 0

    def step(self, closure=None):
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("size mismatch in my fused kernel")
        return super().step(closure)


def registered(name, **fixed):
    """A factory for the registered optimizer ``name`` with ``fixed`` hyperparameters (a planted deviation)."""
    def factory(params, **kwargs):
        return algorithms.make(name, params, **{**kwargs, **fixed})

    factory.__qualname__ = f"{name}({', '.join(f'{k}={v!r}' for k, v in fixed.items())})"
    return factory


class MiniGaLoreAdamW(torch.optim.Optimizer):
    """GaLore-AdamW the way the authors' code runs it, written for these tests from GaLore's
    Algorithm 2 and the conventions of ``variant="official"``: float32 SVD with raw signs, right
    projection for m ≥ n, Adam with the Hugging Face ε and step size, α on the lifted step, decoupled
    decay after the update; parameters that are not matrices take the same dense AdamW step.

    The basis is refreshed when the count of completed steps plus ``refresh_offset`` is a multiple of
    T: at 1-based steps 1, T+1, 2T+1, … for 0; ``refresh_offset=1`` counts the current step before
    projecting and refreshes one step early (1, T, 2T, …); ``never_refresh=True`` keeps the first basis."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, rank=4,
                 update_proj_gap=200, scale=1.0, refresh_offset=0, never_refresh=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, rank=rank,
                                      update_proj_gap=update_proj_gap, scale=scale))
        self.refresh_offset, self.never_refresh = refresh_offset, never_refresh

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                st = self.state[p]
                g = p.grad
                done = st.get("done", 0)  # completed steps
                projected = p.dim() == 2
                if projected:
                    right = p.shape[0] >= p.shape[1]
                    due = (done + self.refresh_offset) % group["update_proj_gap"] == 0 and not self.never_refresh
                    if "basis" not in st or due:
                        U, _, Vh = torch.linalg.svd(g.float(), full_matrices=False)
                        st["basis"] = (Vh[: group["rank"]] if right else U[:, : group["rank"]]).to(p.dtype)
                    P = st["basis"]
                    g = g @ P.T if right else P.T @ g
                if "exp_avg" not in st:
                    st["exp_avg"], st["exp_avg_sq"] = torch.zeros_like(g), torch.zeros_like(g)
                st["done"] = done + 1
                t = st["done"]
                st["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                step_size = group["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
                n = st["exp_avg"] / (st["exp_avg_sq"].sqrt() + group["eps"])
                if projected:
                    n = (n @ P if right else P @ n) * group["scale"]
                p.add_(n, alpha=-step_size)
                if group["weight_decay"] > 0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])


class GaLoreLocalShardRefresh(algorithms.REGISTRY["galore_adamw"]):
    """A planted sharding bug: from the second refresh on, the basis is the SVD of this rank's shard of the
    gradient only (the first refresh is right), placed as if it were the whole matrix's. Under FSDP2 it
    parts from the reference at the first step after the second refresh (step T + 1)."""

    def _refresh(self, grad, state, group, side, rank):
        from torch.distributed.tensor import DTensor, Replicate, Shard

        from algorithms._galore import subspace_basis

        if "basis" not in state or not isinstance(grad, DTensor):
            return super()._refresh(grad, state, group, side, rank)
        local = subspace_basis(grad.to_local(), min(rank, *grad.to_local().shape), side, group["variant"])
        if side == "left":  # this rank's rows of an m x r basis
            shape = (grad.shape[0], local.shape[1])
            state["basis"] = DTensor.from_local(local, grad.device_mesh, [Shard(0)], run_check=False, shape=shape,
                                                stride=(local.shape[1], 1))
        else:  # a "replicated" n x r basis that differs from rank to rank
            state["basis"] = DTensor.from_local(local, grad.device_mesh, [Replicate()], run_check=False)


class RankSkewedAdamW(torch.optim.AdamW):
    """A planted replication bug: each rank steps with a learning rate scaled by (1 + rank / 1000), so DDP
    replicas drift apart from the first step."""

    def step(self, closure=None):
        import torch.distributed as dist

        skew = 1 + dist.get_rank() / 1000 if dist.is_initialized() else 1.0
        for group in self.param_groups:
            group.setdefault("base_lr", group["lr"])
            group["lr"] = group["base_lr"] * skew
        return super().step(closure)
