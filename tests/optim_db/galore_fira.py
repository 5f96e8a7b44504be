"""OptimizerInfo entries for algorithms/galore_adamw.py and algorithms/fira_adamw.py.

Small ranks and refresh gaps so that every contract test sees several refreshes. Neither
optimizer stores a float32 tensor: the official variants' float32 SVD is cast back to the
parameter dtype before it is stored, as the authors' codes do.
"""

from . import ErrorInput, OptimizerInfo, OptimizerInput
from .core import COMMON_ERRORS

SHARED_ERRORS = COMMON_ERRORS + [
    ErrorInput({"rank": 0}, ValueError, "rank"),
    ErrorInput({"rank": 2.5}, TypeError, "rank"),
    ErrorInput({"rank": 5}, ValueError, "rank must be <= the projected dimension"),  # paper: no truncation
    ErrorInput({"update_proj_gap": 0}, ValueError, "update_proj_gap"),
    ErrorInput({"scale": -0.5}, ValueError, "scale"),
    ErrorInput({"proj_side": "diagonal"}, ValueError, "proj_side"),
    ErrorInput({"square_side": "up"}, ValueError, "square_side"),
    ErrorInput({"moment_transfer": "rotate"}, ValueError, "moment_transfer"),
    ErrorInput({"variant": "code"}, ValueError, "variant"),
    ErrorInput({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\]"),
    ErrorInput({"eps": -1e-8}, ValueError, "eps"),
    ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ErrorInput({"eps_placement": "inside"}, ValueError, "eps_placement"),
    ErrorInput({"weight_decay_timing": "during"}, ValueError, "weight_decay_timing"),
    ErrorInput({"bias_correction": 1}, TypeError, "bias_correction"),
]

INFOS = [
    OptimizerInfo(
        name="galore_adamw",
        inputs=[
            OptimizerInput({"lr": 0.05, "rank": 2, "update_proj_gap": 3}, "paper"),
            OptimizerInput({"lr": 0.05, "rank": 2, "update_proj_gap": 2, "variant": "official", "weight_decay": 0.1},
                           "official_wd"),
            OptimizerInput({"lr": 0.05, "rank": 3, "update_proj_gap": 2, "moment_transfer": "project",
                            "proj_side": "reverse_std", "weight_decay": 0.1}, "paper_project_reverse"),
            OptimizerInput({"lr": 0.05, "rank": 50, "update_proj_gap": 2, "variant": "official",
                            "moment_transfer": "project"}, "official_truncated_rank"),
        ],
        error_inputs=SHARED_ERRORS,
        descent_kwargs={"lr": 0.05, "rank": 2, "update_proj_gap": 3, "scale": 1.0},
    ),
    OptimizerInfo(
        name="fira_adamw",
        inputs=[
            OptimizerInput({"lr": 0.05, "rank": 2, "update_proj_gap": 3}, "paper"),
            OptimizerInput({"lr": 0.05, "rank": 2, "update_proj_gap": 2, "variant": "official", "scale": 0.5,
                            "weight_decay": 0.1}, "official_alpha_wd"),
            OptimizerInput({"lr": 0.05, "rank": 3, "update_proj_gap": 2, "scaling": "matrix",
                            "moment_transfer": "project", "limiter_gamma": None}, "paper_matrix_nolimit"),
            OptimizerInput({"lr": 0.05, "rank": 50, "update_proj_gap": 2, "variant": "official",
                            "proj_side": "left"}, "official_truncated_left"),
        ],
        error_inputs=SHARED_ERRORS
        + [
            ErrorInput({"limiter_gamma": 0.5}, ValueError, "limiter_gamma"),
            ErrorInput({"limiter_gamma": "big"}, TypeError, "limiter_gamma"),
            ErrorInput({"scaling": "row"}, ValueError, "scaling"),
            ErrorInput({"scaling_eps": -1.0}, ValueError, "scaling_eps"),
            ErrorInput({"residual_form": "leaky"}, ValueError, "residual_form"),
        ],
        descent_kwargs={"lr": 0.05, "rank": 2, "update_proj_gap": 3, "scale": 1.0},
    ),
]
