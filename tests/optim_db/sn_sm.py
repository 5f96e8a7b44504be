"""OptimizerInfo entries for the Subset-Norm / Subspace-Momentum family (arXiv 2411.07120).

Small ranks (2) and refresh gaps (2-3) so that refreshes happen inside the battery's few steps; every
variant and every refresh rule / subset rule appears at least once.
"""

from . import ErrorInput, OptimizerInfo, OptimizerInput

COMMON_ERRORS = [
    ErrorInput({"lr": -1.0}, ValueError, "lr"),
    ErrorInput({"lr": "fast"}, TypeError, "lr"),
    ErrorInput({"nonfinite": "maybe"}, ValueError, "nonfinite"),
    ErrorInput({"seed": -3}, ValueError, "seed"),
    ErrorInput({"batch_dims": -1}, ValueError, "batch_dims"),
    ErrorInput({"variant": "authors"}, ValueError, "variant"),
]

ADAGRAD_ERRORS = COMMON_ERRORS + [
    ErrorInput({"b0": -1.0}, ValueError, "b0"),
    ErrorInput({"eps": -1e-6}, ValueError, "eps"),
    ErrorInput({"b0": 0.0, "eps": 0.0}, ValueError, "b0 and eps"),
    ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
]

SUBSET_ERRORS = [
    ErrorInput({"subset_size": 0}, ValueError, "subset_size"),
    ErrorInput({"subset_size": "rows"}, ValueError, "subset_size"),
    ErrorInput({"subset_size": 2.5}, TypeError, "subset_size"),
    ErrorInput({"subset_fallback": "ignore"}, ValueError, "subset_fallback"),
]

SN_ADAM_ERRORS = COMMON_ERRORS + SUBSET_ERRORS + [
    ErrorInput({"eps": -1e-6}, ValueError, "eps"),
    ErrorInput({"weight_decay": -1.0}, ValueError, "weight_decay"),
    ErrorInput({"eps_placement": "inside"}, ValueError, "eps_placement"),
    ErrorInput({"bias_correction": 1}, TypeError, "bias_correction"),
]

SM_ERRORS = [
    ErrorInput({"rank": -1}, ValueError, "rank"),
    ErrorInput({"rank": 2.0}, TypeError, "rank"),
    ErrorInput({"rank": 4}, ValueError, "rank.*projected dimension 3"),  # 4 x 3 parameter, svd side right
    ErrorInput({"proj_type": "srht"}, ValueError, "proj_type"),
    ErrorInput({"update_proj_gap": 0}, ValueError, "update_proj_gap"),
    ErrorInput({"refresh": "keep"}, ValueError, "refresh"),
    ErrorInput({"rank_overflow": "clip"}, ValueError, "rank_overflow"),
    ErrorInput({"proj_side": "top"}, ValueError, "proj_side"),
    ErrorInput({"correct_sgd_part": "yes"}, TypeError, "correct_sgd_part"),
]

INFOS = [
    OptimizerInfo(
        name="adagrad_norm",
        inputs=[
            OptimizerInput({"lr": 0.3}, "paper_group"),
            OptimizerInput({"lr": 0.3, "scope": "tensor", "variant": "official", "weight_decay": 0.01}, "official_tensor"),
        ],
        error_inputs=ADAGRAD_ERRORS + [ErrorInput({"scope": "global"}, ValueError, "scope")],
        descent_kwargs={"lr": 0.5},
    ),
    OptimizerInfo(
        name="adagrad_coordinate",
        inputs=[
            OptimizerInput({"lr": 0.1}, "paper"),
            OptimizerInput({"lr": 0.1, "variant": "official", "weight_decay": 0.01}, "official_wd"),
        ],
        error_inputs=ADAGRAD_ERRORS,
        descent_kwargs={"lr": 0.2},
    ),
    OptimizerInfo(
        name="adagrad_subset_norm",
        inputs=[
            OptimizerInput({"lr": 0.1, "subset_size": "heuristics"}, "heuristics"),
            OptimizerInput({"lr": 0.1, "subset_size": 4, "variant": "official", "subset_fallback": "allow"}, "k4_official"),
            OptimizerInput({"lr": 0.1, "subset_size": -2, "b0": 0.5, "eps": 1e-8}, "negk"),
        ],
        error_inputs=ADAGRAD_ERRORS + SUBSET_ERRORS,
        descent_kwargs={"lr": 0.3, "subset_size": "heuristics"},
    ),
    OptimizerInfo(
        name="adam_sn",
        inputs=[
            OptimizerInput({"lr": 0.03, "subset_size": "heuristics"}, "heuristics_paper"),
            OptimizerInput({"lr": 0.03, "subset_size": 4, "variant": "official", "weight_decay": 0.1,
                            "subset_fallback": "allow"}, "k4_official_wd"),
            OptimizerInput({"lr": 0.03, "betas": (0.9, 1.0), "bias_correction": False, "subset_size": -2}, "adagrad_preset"),
        ],
        error_inputs=SN_ADAM_ERRORS + [
            ErrorInput({"betas": (1.0, 0.999)}, ValueError, r"betas\[0\]"),
            ErrorInput({"betas": (0.9, 1.5)}, ValueError, r"betas\[1\]"),
            ErrorInput({"betas": 0.9}, TypeError, "betas"),
        ],
        descent_kwargs={"lr": 0.05, "subset_size": "heuristics"},
    ),
    OptimizerInfo(
        name="rmsprop_sn",
        inputs=[
            OptimizerInput({"lr": 0.02, "subset_size": "heuristics"}, "heuristics"),
            OptimizerInput({"lr": 0.02, "subset_size": -2, "bias_correction": True, "variant": "official"}, "bc_official"),
        ],
        error_inputs=SN_ADAM_ERRORS + [ErrorInput({"beta2": 1.5}, ValueError, "beta2")],
        descent_kwargs={"lr": 0.05, "subset_size": "heuristics"},
    ),
    OptimizerInfo(
        name="subspace_momentum",
        inputs=[
            OptimizerInput({"lr": 0.02, "rank": 2, "update_proj_gap": 3}, "svd_reset"),
            OptimizerInput({"lr": 0.02, "rank": 2, "update_proj_gap": 3, "variant": "official", "bias_correction": True},
                           "svd_official"),
            OptimizerInput({"lr": 0.02, "rank": 2, "update_proj_gap": 2, "proj_type": "uniform", "refresh": "carry",
                            "weight_decay": 0.01}, "uniform_carry"),
            OptimizerInput({"lr": 0.02, "rank": 2, "update_proj_gap": 2, "proj_type": "topk", "refresh": "overlap"},
                           "topk_overlap"),
        ],
        error_inputs=COMMON_ERRORS + SM_ERRORS + [
            ErrorInput({"momentum": 1.0}, ValueError, "momentum"),
            ErrorInput({"weight_decay": -1.0}, ValueError, "weight_decay"),
        ],
        descent_kwargs={"lr": 0.05, "rank": 2, "update_proj_gap": 5},
    ),
    OptimizerInfo(
        name="adam_sn_sm",
        inputs=[
            OptimizerInput({"lr": 0.03, "rank": 2, "update_proj_gap": 3}, "svd_paper"),
            OptimizerInput({"lr": 0.03, "rank": 2, "update_proj_gap": 3, "variant": "official", "subset_size": -2,
                            "weight_decay": 0.1}, "svd_official"),
            OptimizerInput({"lr": 0.03, "rank": 2, "update_proj_gap": 2, "proj_type": "uniform", "refresh": "carry"},
                           "uniform_carry"),
            OptimizerInput({"lr": 0.03, "rank": 9, "update_proj_gap": 2, "proj_type": "topk", "rank_overflow": "truncate",
                            "betas": (0.9, 1.0), "bias_correction": False}, "topk_adagrad"),
        ],
        error_inputs=SN_ADAM_ERRORS + SM_ERRORS + [
            ErrorInput({"betas": (1.0, 0.999)}, ValueError, r"betas\[0\]"),
        ],
        descent_kwargs={"lr": 0.05, "rank": 2, "update_proj_gap": 5},
    ),
]

# subspace_momentum's and adam_sn_sm's "uniform" inputs draw random indices; the battery's
# seed-changes-the-trajectory test uses inputs[0], so it is run for them in their own test files.
