"""Skip the distributed tests where this torch build has no gloo backend or processes cannot be spawned."""

import multiprocessing

import pytest
import torch.distributed as dist


def pytest_collection_modifyitems(config, items):
    reason = None
    if not dist.is_available() or not dist.is_gloo_available():
        reason = "torch.distributed with the gloo backend is not available"
    elif "spawn" not in multiprocessing.get_all_start_methods():
        reason = "processes cannot be spawned here"
    if reason:
        for item in items:
            if "tests/distributed" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))
