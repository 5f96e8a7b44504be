"""OptimizerInfo entries for the baselines in algorithms/sgd.py and algorithms/adam.py."""

from . import ErrorInput, OptimizerInfo, OptimizerInput

COMMON_ERRORS = [
    ErrorInput({"lr": -1.0}, ValueError, "lr"),
    ErrorInput({"lr": "fast"}, TypeError, "lr"),
    ErrorInput({"nonfinite": "maybe"}, ValueError, "nonfinite"),
    ErrorInput({"seed": -3}, ValueError, "seed"),
    ErrorInput({"batch_dims": -1}, ValueError, "batch_dims"),
]

INFOS = [
    OptimizerInfo(
        name="sgd",
        inputs=[
            OptimizerInput({"lr": 0.05}, "plain"),
            OptimizerInput({"lr": 0.05, "momentum": 0.9}, "heavy_ball"),
            OptimizerInput({"lr": 0.05, "momentum": 0.9, "momentum_type": "ema", "bias_correction": True}, "ema_bc"),
            OptimizerInput({"lr": 0.05, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.01}, "damp_wd"),
        ],
        error_inputs=COMMON_ERRORS
        + [
            ErrorInput({"momentum": 1.0}, ValueError, "momentum"),
            ErrorInput({"momentum_type": "nesterov"}, ValueError, "momentum_type"),
            ErrorInput({"weight_decay": -0.1}, ValueError, "weight_decay"),
            ErrorInput({"dampening": 2.0}, ValueError, "dampening"),
        ],
        descent_kwargs={"lr": 0.05},
    ),
    OptimizerInfo(
        name="adam",
        inputs=[
            OptimizerInput({"lr": 0.01}, "torch"),
            OptimizerInput({"lr": 0.01, "eps_placement": "hf", "weight_decay": 0.1}, "hf_wd"),
            OptimizerInput({"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": False}, "l2"),
            OptimizerInput({"lr": 0.01, "bias_correction": False}, "no_bc"),
        ],
        error_inputs=COMMON_ERRORS
        + [
            ErrorInput({"betas": (1.0, 0.999)}, ValueError, r"betas\[0\]"),
            ErrorInput({"betas": (0.9, -0.1)}, ValueError, r"betas\[1\]"),
            ErrorInput({"betas": 0.9}, TypeError, "betas"),
            ErrorInput({"eps": -1e-8}, ValueError, "eps"),
            ErrorInput({"eps_placement": "inside"}, ValueError, "eps_placement"),
            ErrorInput({"weight_decay": -1.0}, ValueError, "weight_decay"),
        ],
        descent_kwargs={"lr": 0.05},
    ),
]
