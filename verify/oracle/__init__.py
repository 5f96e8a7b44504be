"""The oracle: step a candidate optimizer and a float64 reference on identical gradients.

This is how a user checks their own fused, low-precision or distributed implementation (or a
third-party package) against ours, in the spirit of bitsandbytes' tests against torch.optim:

* the **reference** (a registry name) always runs in float64: it is the ground truth;
* the **candidate** runs in its own dtype on parameters that start equal (rounded);
* both receive the same gradients every step (:mod:`verify.oracle.gradients`);
* after every step the parameters, and the state tensors named in ``state_map``, are compared by
  the relative error ``max|a − b| / max|b|`` against a tolerance for the candidate's dtype;
* the verdict never passes a non-finite value, an unmapped state key, a shape mismatch or an empty
  comparison (:mod:`verify.oracle.engine`);
* the report names the first failure (step, quantity, parameter, error, tolerance), keeps per-step
  series, and lists the hyperparameters whose effective values differ (:mod:`verify.oracle.report`).

Defaults that make every code path run (shapes, steps, gradients, a nonzero weight decay, fitted
ranks) are in :mod:`verify.oracle.settings`. Golden traces that frameworks without torch can check
are in :mod:`verify.oracle.trace`. Entry points: :func:`compare`, :func:`assert_matches`,
:func:`check_trace`, :func:`write_trace`, and the ``verify oracle`` / ``verify trace`` commands.
"""

from __future__ import annotations

from typing import Any

from .candidates import load_candidate, require_version, stubbed_imports
from .compare import compare
from .engine import relative_error
from .errors import OracleInputError
from .gradients import GRADIENT_KINDS
from .problem import DEFAULT_SHAPES
from .report import Failure, OracleReport
from .settings import DEFAULT_RTOL, STRICT_RTOL
from .trace import check_trace, read_trace, write_trace

__all__ = [
    "compare", "assert_matches", "check_trace", "write_trace", "read_trace", "load_candidate", "relative_error",
    "OracleReport", "Failure", "OracleInputError", "DEFAULT_RTOL", "STRICT_RTOL", "DEFAULT_SHAPES",
    "GRADIENT_KINDS", "stubbed_imports", "require_version",
]


def assert_matches(reference: str, candidate: Any, **options: Any) -> OracleReport:
    """:func:`compare` (or :func:`check_trace` with ``trace=PATH`` instead of a reference name), raising
    ``AssertionError`` with the explained report when the candidate does not match.

    For pytest::

        from verify.oracle import assert_matches

        def test_my_adamw_matches_the_reference():
            assert_matches("adam", MyAdamW, kwargs={"lr": 1e-3}, state_map={"exp_avg": "m", "exp_avg_sq": "v"})

    Returns the report when it passes (for extra assertions on its series).
    """
    trace = options.pop("trace", None)
    if trace is not None:
        report = check_trace(trace, candidate, **options)
        if reference not in (None, report.reference):
            raise OracleInputError(f"assert_matches: the trace holds {report.reference!r}, not {reference!r}")
    else:
        report = compare(reference, candidate, **options)
    if not report.passed:
        raise AssertionError(report.summary(explain=True))
    return report
