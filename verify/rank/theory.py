r"""What the theory predicts for full-batch GD on the A − BWC problem, from the Hessian's eigen-decomposition
alone (the package docstring derives it): the instances, the vec convention and :class:`AbcTheory`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from synthetic import spectrum as sp
from synthetic.problems import MatrixQuadratic
from synthetic.problems.quadratic_cosine import haar_orthogonal

__all__ = ["EPS_LEVELS", "EXCITED", "CLUSTER", "vec", "unvec", "gapped_problem", "AbcTheory"]

EPS_LEVELS = (0.01, 0.1)
EXCITED = 1e-12  # |c_j| > EXCITED · max|c| counts as excited
CLUSTER = 1e-9  # eigenvalues within CLUSTER · λ_max are one eigenvalue


# ----------------------------------------------------------------------------- vec conventions
def vec(G: torch.Tensor) -> torch.Tensor:
    """Column-major vec of ``[..., m, n]`` (the convention of ``MatrixQuadratic.hessian_matrix``)."""
    return G.mT.reshape(*G.shape[:-2], -1)


def unvec(v: torch.Tensor, m: int, n: int) -> torch.Tensor:
    """Inverse of :func:`vec`: ``[..., m·n]`` → ``[..., m, n]``."""
    return v.reshape(*v.shape[:-1], n, m).mT


# ----------------------------------------------------------------------------- instances
def _psd(eigs: torch.Tensor, seed: int) -> torch.Tensor:
    q = haar_orthogonal(eigs.numel(), seed, eigs.dtype)
    mat = (q * eigs) @ q.T
    return 0.5 * (mat + mat.T)


def gapped_problem(m: int, n: int, N: int = 1, *, gap: float = 2.0, top: float = 10.0, seed: int = 0) -> MatrixQuadratic:
    r"""An A − BWC instance whose B, C spectra are :math:`\{1\} \cup \operatorname{logspace}(g, 10)` (Haar bases,
    Gaussian A), so that :math:`\lambda_2/\lambda_1 = g` and Lemma 3.3's bound becomes informative before the
    float floor."""
    def spectrum(k: int) -> torch.Tensor:
        rest = torch.logspace(math.log10(gap), math.log10(top), k - 1, dtype=torch.float64)
        return torch.cat([torch.ones(1, dtype=torch.float64), rest])

    B = torch.stack([_psd(spectrum(m), 7000 + 1000 * seed + 2 * i) for i in range(N)])
    C = torch.stack([_psd(spectrum(n), 7001 + 1000 * seed + 2 * i) for i in range(N)])
    A = torch.randn(N, m, n, generator=torch.Generator().manual_seed(7000 + seed), dtype=torch.float64)
    return MatrixQuadratic(A, B, C)


# ----------------------------------------------------------------------------- theory
@dataclass
class AbcTheory:
    """Everything the theory predicts for full-batch GD from :math:`W_0` (see the module docstring)."""

    m: int
    n: int
    lr: float
    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    coefficients: torch.Tensor  # c = Vᵀ vec G_0
    lambda1: float
    lambda2: float
    rho: float
    g_parallel: torch.Tensor
    sr_limit: float
    bound_constant: float
    lambda1_multiplicity: int
    v1_sigma_ratio: float  # σ₂/σ₁ of G∥ (0 ⇔ rank one ⇔ decomposable v₁)
    condition: float

    @classmethod
    def of(cls, problem: MatrixQuadratic, lr: float | None = None, W0: torch.Tensor | None = None) -> "AbcTheory":
        m, n = problem.shape
        lr = 1.0 / problem.L if lr is None else lr
        S = problem.hessian_matrix()
        lam, V = torch.linalg.eigh(S)
        W0 = problem.x0 if W0 is None else W0
        G0 = problem.grad(W0.unsqueeze(0))[0]
        c = V.T @ vec(G0)
        excited = c.abs() > EXCITED * c.abs().max()
        tol = CLUSTER * float(lam[-1])
        lam_e = lam[excited]
        l1 = float(lam_e[0])
        above = lam_e[lam_e - l1 > tol]
        if above.numel() == 0:
            raise ValueError("G_0 excites a single eigenvalue of S: there is no decay to measure")
        l2 = float(above[0])
        in1 = (lam - l1).abs() <= tol
        P1 = V[:, in1]
        g_par = unvec(P1 @ (P1.T @ vec(G0)), m, n)
        sig = sp.singular_values(g_par)
        sr_inf = float(sp.stable_rank(sig))
        K = float((G0 - g_par).square().sum() / sig[0] ** 2)
        return cls(m, n, lr, lam, V, c, l1, l2, (1 - lr * l2) / (1 - lr * l1), g_par, sr_inf, K, int(in1.sum()),
                   float(sig[1] / sig[0]) if sig.numel() > 1 else 0.0, problem.L / problem.mu)

    def closed_form(self, steps: torch.Tensor) -> torch.Tensor:
        r""":math:`G_t / (1-\eta\lambda_1)^t` for every t in ``steps`` (``[T, m, n]``)."""
        ratio = (1 - self.lr * self.eigenvalues) / (1 - self.lr * self.lambda1)
        t = steps.to(torch.float64)[:, None]
        # |ratio| <= 1 except on unexcited directions below λ1, whose coefficients are ~0: clamp them out
        weights = torch.where(self.coefficients.abs() > EXCITED * self.coefficients.abs().max(),
                              ratio[None, :] ** t, torch.zeros(()))
        return unvec((weights * self.coefficients[None, :]) @ self.eigenvectors.T, self.m, self.n)

    def bound(self, steps: torch.Tensor) -> torch.Tensor:
        """GaLore Lemma 3.3: sr(G∥) + ρ^{2t} ‖G_0 − G∥‖_F² / ‖G∥‖_2²."""
        return self.sr_limit + self.rho ** (2 * steps.to(torch.float64)) * self.bound_constant

    def summary(self) -> dict[str, Any]:
        return {"lr": self.lr, "lambda1": self.lambda1, "lambda2": self.lambda2, "rho": self.rho, "rho_squared": self.rho**2,
                "sr_limit": self.sr_limit, "bound_constant": self.bound_constant,
                "lambda1_multiplicity": self.lambda1_multiplicity, "g_parallel_sigma2_over_sigma1": self.v1_sigma_ratio,
                "hessian_condition": self.condition, "kappa_limit": math.sqrt(max(0.0, 1 - 1 / self.sr_limit))}


