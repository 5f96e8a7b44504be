"""The communication of a step on FSDP2 shards (verify/comm.py), checked against what each route must cost:
the Gram route of a tall gradient all-reduces n x n (not the m x n gather), a wide gradient's exact SVD
gathers it, a left projection all-reduces r x n, elementwise and subset-norm steps only agree on finiteness."""

from __future__ import annotations

from verify.comm import measure_steps
from verify.oracle.distributed import run_on_ranks

FLAG = 4  # the one-int32 all-reduce that makes every rank take the same non-finite decision
F32 = 4


import pytest  # noqa: E402

CASES = [("galore_adamw", (344, 128)), ("galore_adamw", (128, 344)), ("adam", (344, 128)), ("adam_sn", (344, 128)),
         ("lion", (344, 128))]


def measure_cases(cases) -> dict:
    """On every rank: bytes of each of 3 steps, per (optimizer, shape) (one process group for all cases)."""
    return {(name, shape): [s["bytes"] for s in measure_steps([name], 3, (("w", shape),))[name]["steps"]]
            for name, shape in cases}


@pytest.fixture(scope="module")
def measured():
    return run_on_ranks(measure_cases, CASES, nproc=2, timeout=180)


def test_tall_gradient_uses_the_gram_route_and_projects_locally(measured):
    m, n, r = 344, 128, 8
    first, second, third = measured["galore_adamw", (m, n)]
    assert first == FLAG + n * n * F32, "the Gram matrix all-reduced, not the m x n gradient gathered"
    assert second == third == FLAG, f"a right basis (n x {r}) projects each rank's rows locally"


def test_wide_gradient_gathers_for_its_exact_svd_and_all_reduces_its_projection(measured):
    m, n, r = 128, 344, 8
    first, second, _ = measured["galore_adamw", (m, n)]
    assert first == FLAG + m * n * F32 + r * n * F32
    assert second == FLAG + r * n * F32


def test_elementwise_and_subset_norm_steps_communicate_only_the_finite_check(measured):
    for name in ("adam", "adam_sn", "lion"):
        assert measured[name, (344, 128)] == [FLAG] * 3, name
