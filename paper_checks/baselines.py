"""The baselines the papers measure themselves against: SGD, SGD with momentum, Adam and Lion.

These are not claims of the six papers; they are the standard results the rate engine uses to show
that its fits find the textbook slopes on the same problems (gradient descent's 2LΔ/T bound is derived
here ([D]); the others are background theorems, asserted for their exponents only ([BG])). A rate
check that fails here would put every paper's verdict on the same problem in doubt.
"""

from __future__ import annotations

from ._results import RateClaim, ThirdPartyClaim, rate_claims, thirdparty_claims

PAPER = "Baselines (standard literature)"
PREFIX = "baselines"

THEOREMS = {
    "gd_descent": ("the descent lemma (derived here)", "Gradient descent with η = 1/L on an L-smooth function: "
                   "(1/T)Σ‖∇f(x_t)‖² ≤ 2LΔ/T at every T (slope −1)."),
    "sgd_horizon": ("Ghadimi & Lan 2013, constants derived here", "SGD with the fixed-horizon step η₀/√T: "
                    "E R_T ≤ (2Δ/η₀ + Lη₀σ²)/√T (slope −1/2 under noise)."),
    "sgdm_horizon": ("Liu, Gao & Yin, NeurIPS 2020", "SGD with momentum has SGD's rate, O(LΔ/T + σ√(LΔ/T))."),
    "adam_defossez": ("Défossez, Bottou, Bach & Usunier, TMLR 2022", "Adam with bounded gradients and η ∝ 1/√T: "
                      "O(d·log T/√T)."),
    "no_theorem_sqrt_analogy": ("none (Lion has no non-convex theorem in these papers)", "Expected by analogy, "
                                "O(1/√T): the toolkit's expectation."),
}
RATES = rate_claims(PAPER, PREFIX, THEOREMS, [
    RateClaim("sgd/gd-bound", "D", "gd_descent", "baselines"),
    RateClaim("sgd/gd-slope", "D", "gd_descent", "baselines"),
    RateClaim("sgd/bound", "D", "sgd_horizon", "matrix_iso"),
    RateClaim("sgd/slope", "D", "sgd_horizon", "matrix_iso"),
    RateClaim("sgdm/slope", "BG", "sgdm_horizon", "matrix_iso"),
    RateClaim("adam/slope", "BG", "adam_defossez", "baselines"),
    RateClaim("adam/rows-slope", "BG", "adam_defossez", "matrix_rows"),
    RateClaim("adam/weight-decay-slope", "BG", "adam_defossez", "code_paths"),
    RateClaim("lion/slope", "U", "no_theorem_sqrt_analogy", "sn_adam"),
])

_O = "installed packages against the references (results/oracle/thirdparty.json)"
ORACLE = thirdparty_claims(PAPER, PREFIX, [
    ThirdPartyClaim("torch-adamw-for-loop-float64", "PASS", _O, "V", "torch.optim.AdamW equals the adam reference "
                    "(decoupled decay) in float64."),
    ThirdPartyClaim("torch-adagrad", "PASS", _O, "V", "torch.optim.Adagrad equals AdaGrad-Coordinate with b₀ = 0 and "
                    "ε = 1e-10 after the root."),
    ThirdPartyClaim("lion-pytorch-strict", "PASS", _O, "T", "lion-pytorch 0.2.5 equals the Lion reference in float64."),
])
