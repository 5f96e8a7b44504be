"""synthetic/allocator.py: argument checks, the environment switch, and that glibc accepts the settings."""

from __future__ import annotations

import sys

import pytest

from synthetic import allocator


@pytest.mark.parametrize("kwargs, error", [
    ({"mmap_threshold": 0}, ValueError),
    ({"mmap_threshold": 64 * allocator.MiB}, ValueError),  # above glibc's HEAP_MAX_SIZE / 2
    ({"trim_threshold": -1}, ValueError),
    ({"mmap_threshold": 1.5}, TypeError),
    ({"trim_threshold": True}, TypeError),
])
def test_bad_arguments_name_the_argument(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        allocator.retain_freed_memory(**kwargs)


@pytest.mark.skipif(not sys.platform.startswith("linux") or allocator._mallopt() is None, reason="needs glibc mallopt")
def test_glibc_accepts_the_settings_and_status_records_them():
    assert allocator.retain_freed_memory(mmap_threshold=8 * allocator.MiB, trim_threshold=64 * allocator.MiB) is True
    assert allocator.STATUS == {"retain_freed_memory": True, "mmap_threshold": 8 * allocator.MiB,
                                "trim_threshold": 64 * allocator.MiB}
    assert allocator.retain_freed_memory() is True  # idempotent; back to the defaults the tests use
    assert allocator.STATUS["mmap_threshold"] == 32 * allocator.MiB


def test_environment_switch(monkeypatch):
    monkeypatch.setenv(allocator.ENV_VAR, "system")
    assert allocator.retain_unless_disabled() is False
    monkeypatch.setenv(allocator.ENV_VAR, "bogus")
    with pytest.raises(ValueError, match=allocator.ENV_VAR):
        allocator.retain_unless_disabled()
    monkeypatch.setenv(allocator.ENV_VAR, "retain")
    assert allocator.retain_unless_disabled() is (allocator._mallopt() is not None)
