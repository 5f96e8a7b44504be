"""OptimizerInfo entries for the MARS family (algorithms/mars_adamw.py, mars_lion.py, mars_shampoo.py) and lion.

Every estimator that a closure can drive (approx, exact), both variants, both first-step rules, the
three clipping modes, both routing rules with and without ``optimize_1d``, γ/β schedules, both
MARS-Shampoo orthogonalisers (bf16 NS in the official variant). Exact inputs set
``step_requires_closure`` so the param-group test steps through closures. The look-ahead estimator
needs a second gradient from the caller before each step, which the battery's protocol cannot
supply; tests/algorithms/test_mars.py runs the same contract items on it. No float32 tensor is ever
stored (NS results are cast back), so ``fp32_state_keys`` stays empty.
"""

from . import ErrorInput, OptimizerInfo, OptimizerInput
from .core import COMMON_ERRORS


def gamma_ramp(t: int) -> float:
    """A linear γ schedule (paper Fig. 14 tries linear schedules)."""
    return min(1.0, 0.1 * t)


def beta1_theory(t: int) -> float:
    """β1,t = 1 − c·η_t² with η_t = (s+t)^(−1/3), s = 8, c = 2 (the shape of Theorem B.6's schedule)."""
    return 1.0 - min(1.0, 2.0 * (8 + t) ** (-2.0 / 3.0))


MARS_ERRORS = COMMON_ERRORS + [
    ErrorInput({"gamma": -0.1}, ValueError, "gamma"),
    ErrorInput({"gamma": "big"}, TypeError, "gamma"),
    ErrorInput({"estimator": "storm"}, ValueError, "estimator"),
    ErrorInput({"variant": "code"}, ValueError, "variant"),
    ErrorInput({"first_step": "zero"}, ValueError, "first_step"),
    ErrorInput({"clip": "layer"}, ValueError, "clip"),
    ErrorInput({"clip_threshold": 0.0}, ValueError, "clip_threshold"),
    ErrorInput({"optimize_1d": 1}, TypeError, "optimize_1d"),
    ErrorInput({"routing": "conv"}, ValueError, "routing"),
    ErrorInput({"lr_1d": -1e-3}, ValueError, "lr_1d"),
    ErrorInput({"lr": 0.0, "optimize_1d": False}, ValueError, "lr_1d"),
    ErrorInput({"betas_1d": (0.9, 1.0)}, ValueError, r"betas_1d\[1\]"),
    ErrorInput({"betas_1d": 0.9}, TypeError, "betas_1d"),
    ErrorInput({"weight_decay_1d": -0.1}, ValueError, "weight_decay_1d"),
    ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ErrorInput({"eps": -1e-8}, ValueError, "eps"),
    ErrorInput({"replay_rng": "yes"}, TypeError, "replay_rng"),
]
ADAM_BETA_ERRORS = [
    ErrorInput({"betas": (1.0, 0.99)}, ValueError, r"betas\[0\]"),
    ErrorInput({"betas": (0.9, -0.1)}, ValueError, r"betas\[1\]"),
    ErrorInput({"betas": 0.9}, TypeError, "betas"),
    ErrorInput({"bias_correction": 1}, TypeError, "bias_correction"),
    ErrorInput({"betas": (beta1_theory, 0.99), "bias_correction": True}, ValueError, "bias_correction"),
]

INFOS = [
    OptimizerInfo(
        name="mars_adamw",
        inputs=[
            OptimizerInput({"lr": 0.05}, "paper_approx_global"),
            OptimizerInput({"lr": 0.05, "variant": "official", "weight_decay": 0.1}, "official_approx_tensor_wd"),
            OptimizerInput({"lr": 0.05, "estimator": "exact"}, "paper_exact", step_requires_closure=True),
            OptimizerInput({"lr": 0.05, "estimator": "exact", "variant": "official", "routing": "ours",
                            "weight_decay": 0.1, "weight_decay_1d": 0.05}, "official_exact_ours",
                           step_requires_closure=True),
            OptimizerInput({"lr": 0.05, "gamma": gamma_ramp, "betas": (beta1_theory, 0.99), "bias_correction": False,
                            "clip": "none", "first_step": "official"}, "schedules_noclip"),
            OptimizerInput({"lr": 0.05, "estimator": "exact", "gamma": 1.0, "preconditioner": "identity",
                            "clip": "tensor", "clip_threshold": 0.5, "bias_correction": False}, "storm_like",
                           step_requires_closure=True),
            OptimizerInput({"lr": 0.05, "variant": "official", "clip": "global", "optimize_1d": True}, "official_1d_global"),
        ],
        error_inputs=MARS_ERRORS + ADAM_BETA_ERRORS
        + [ErrorInput({"preconditioner": "diag"}, ValueError, "preconditioner")],
        descent_kwargs={"lr": 0.05},
    ),
    OptimizerInfo(
        name="mars_lion",
        inputs=[
            OptimizerInput({"lr": 0.02}, "paper_approx_global"),
            OptimizerInput({"lr": 0.02, "variant": "official", "weight_decay": 0.1}, "official_approx_tensor_wd"),
            OptimizerInput({"lr": 0.02, "estimator": "exact", "variant": "official"}, "official_exact",
                           step_requires_closure=True),
            OptimizerInput({"lr": 0.02, "gamma": gamma_ramp, "beta1": beta1_theory, "clip": "none",
                            "routing": "ours", "variant": "official"}, "schedules_ours"),
        ],
        error_inputs=MARS_ERRORS
        + [
            ErrorInput({"beta1": 1.0}, ValueError, "beta1"),
            ErrorInput({"beta1": "x"}, TypeError, "beta1"),
        ],
        descent_kwargs={"lr": 0.02},
    ),
    OptimizerInfo(
        name="mars_shampoo",
        inputs=[
            OptimizerInput({"lr": 0.05}, "paper_svd"),
            OptimizerInput({"lr": 0.05, "variant": "official", "weight_decay": 0.1}, "official_ns_bf16_wd"),
            OptimizerInput({"lr": 0.05, "variant": "official", "ns_dtype": None, "routing": "ours",
                            "optimize_1d": True}, "official_ns_f64_ours_1d"),
            OptimizerInput({"lr": 0.05, "estimator": "exact", "clip": "global"}, "paper_exact_global",
                           step_requires_closure=True),
            OptimizerInput({"lr": 0.05, "orthogonalizer": "newton_schulz", "ns_steps": 3, "betas": (beta1_theory, 0.99),
                            "bias_correction": False, "first_step": "official"}, "paper_ns_schedule"),
        ],
        error_inputs=MARS_ERRORS + ADAM_BETA_ERRORS
        + [
            ErrorInput({"orthogonalizer": "qr"}, ValueError, "orthogonalizer"),
            ErrorInput({"ns_steps": 0}, ValueError, "ns_steps"),
            ErrorInput({"ns_steps": 2.5}, TypeError, "ns_steps"),
            ErrorInput({"ns_coefficients": (1.0, 2.0)}, TypeError, "ns_coefficients"),
            ErrorInput({"ns_coefficients": (1.0, "b", 2.0)}, TypeError, r"ns_coefficients\[1\]"),
            ErrorInput({"ns_dtype": "float8"}, ValueError, "ns_dtype"),
            ErrorInput({"shape_factor": "yes"}, TypeError, "shape_factor"),
        ],
        descent_kwargs={"lr": 0.05},
    ),
    OptimizerInfo(
        name="lion",
        inputs=[
            OptimizerInput({"lr": 0.02}, "default"),
            OptimizerInput({"lr": 0.02, "betas": (0.95, 0.98), "weight_decay": 0.5}, "wd"),
        ],
        error_inputs=COMMON_ERRORS
        + [
            ErrorInput({"betas": (1.0, 0.99)}, ValueError, r"betas\[0\]"),
            ErrorInput({"betas": (0.9, -0.1)}, ValueError, r"betas\[1\]"),
            ErrorInput({"betas": 0.9}, TypeError, "betas"),
            ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
        ],
        descent_kwargs={"lr": 0.02},
    ),
]
