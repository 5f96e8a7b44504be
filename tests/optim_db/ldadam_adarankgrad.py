"""OptimizerInfo entries for algorithms/ldadam.py and algorithms/adarankgrad.py.

Ranks are small (2-3) so every battery shape (min dim 5) is projected at a rank below full; the
AdaRankGrad inputs use short caps and a tolerance so refreshes (and rank changes) happen within the
battery's few steps.
"""

from . import ErrorInput, OptimizerInfo, OptimizerInput
from .core import COMMON_ERRORS

LDADAM_ERRORS = COMMON_ERRORS + [
    ErrorInput({"betas": (1.0, 0.99)}, ValueError, r"betas\[0\]"),
    ErrorInput({"eps": -1.0}, ValueError, "eps"),
    ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ErrorInput({"rank": 0}, ValueError, "rank"),
    ErrorInput({"rank": 2.5}, TypeError, "rank"),
    ErrorInput({"rank": 4}, ValueError, "rank must be <= the projected dimension 3"),  # the 4×3 probe
    ErrorInput({"rho": 1.0}, ValueError, "rho"),
    ErrorInput({"proj_side": "diagonal"}, ValueError, "proj_side"),
    ErrorInput({"square_side": "up"}, ValueError, "square_side"),
    ErrorInput({"proj_method": "qr"}, ValueError, "proj_method"),
    ErrorInput({"error_feedback": 1}, TypeError, "error_feedback"),
    ErrorInput({"eps_placement": "inside"}, ValueError, "eps_placement"),
    ErrorInput({"weight_decay_timing": "never"}, ValueError, "weight_decay_timing"),
    ErrorInput({"variant": "v2"}, ValueError, "variant"),
]

ADARANKGRAD_BASE = {"lr": 0.02, "min_rank": 1, "max_rank": 3, "max_steps_per_subspace": 3,
                    "oversampling": 1, "power_iters": 0}

ADARANKGRAD_ERRORS = COMMON_ERRORS + [
    ErrorInput({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\]"),
    ErrorInput({"min_rank": 0}, ValueError, "min_rank"),
    ErrorInput({"max_rank": 1, "min_rank": 2}, ValueError, "max_rank"),
    ErrorInput({"max_rank": 4}, ValueError, "max_rank must be <= the projected dimension 3"),
    ErrorInput({"rank_step": 0}, ValueError, "rank_step"),
    ErrorInput({"rank_rule": "entropy"}, ValueError, "rank_rule"),
    ErrorInput({"rank_threshold": 1.5}, ValueError, "rank_threshold"),
    ErrorInput({"subspace_tol": -1.0}, ValueError, "subspace_tol"),
    ErrorInput({"subspace_tol_factor": 0.0}, ValueError, "subspace_tol_factor"),
    ErrorInput({"max_steps_per_subspace": 0}, ValueError, "max_steps_per_subspace"),
    ErrorInput({"svd": "lanczos"}, ValueError, "svd"),
    ErrorInput({"oversampling": -1}, ValueError, "oversampling"),
    ErrorInput({"power_iters": 1.0}, TypeError, "power_iters"),
    ErrorInput({"first_moment_transform": "flip"}, ValueError, "first_moment_transform"),
    ErrorInput({"first_moment_transform": "keep"}, ValueError, "first_moment_transform"),  # rank not fixed
    ErrorInput({"second_moment_transform": "linear"}, ValueError, "second_moment_transform"),
    ErrorInput({"second_moment_transform": "keep"}, ValueError, "second_moment_transform"),
    ErrorInput({"bias_correction": True}, ValueError, "bias_correction"),
    ErrorInput({"scale": 0.0}, ValueError, "scale"),
    ErrorInput({"proj_side": "up"}, ValueError, "proj_side"),
    ErrorInput({"sign": "positive"}, ValueError, "sign"),
    ErrorInput({"eps_placement": "inside"}, ValueError, "eps_placement"),
    ErrorInput({"batch_dims": 1}, ValueError, "batch_dims"),  # data-dependent rank: unsupported
]

INFOS = [
    OptimizerInfo(
        name="ldadam",
        inputs=[
            OptimizerInput({"lr": 0.02, "rank": 2}, "paper"),
            OptimizerInput({"lr": 0.02, "rank": 3, "variant": "official", "weight_decay": 0.1}, "official_wd"),
            OptimizerInput({"lr": 0.02, "rank": 2, "error_feedback": False, "proj_method": "svd"}, "svd_no_ef"),
            OptimizerInput({"lr": 0.02, "rank": 2, "proj_method": "svd_lowrank", "proj_side": "reverse_std"}, "lowrank_rev"),
        ],
        error_inputs=LDADAM_ERRORS,
        descent_kwargs={"lr": 0.05, "rank": 2},
    ),
    OptimizerInfo(
        name="adarankgrad",
        inputs=[
            OptimizerInput(dict(ADARANKGRAD_BASE), "randomized"),
            OptimizerInput({**ADARANKGRAD_BASE, "subspace_tol": 1.0, "max_steps_per_subspace": None,
                            "second_moment_transform": "abs", "rank_rule": "relative_residual",
                            "rank_threshold": 0.3}, "tol_abs"),
            OptimizerInput({**ADARANKGRAD_BASE, "svd": "exact", "eps_placement": "hf", "weight_decay": 0.1,
                            "scale": 0.5, "bias_correction": "per_subspace", "first_moment_transform": "reset",
                            "second_moment_transform": "clamp"}, "exact_hf"),
            OptimizerInput({**ADARANKGRAD_BASE, "min_rank": 2, "max_rank": 2, "svd": "exact",
                            "first_moment_transform": "keep", "second_moment_transform": "keep",
                            "proj_side": "right"}, "galore_like"),
        ],
        error_inputs=ADARANKGRAD_ERRORS,
        descent_kwargs={**ADARANKGRAD_BASE, "lr": 0.05},
        uses_randomness=True,
    ),
]
