r"""Keep freed CPU memory in the process heap, so that batched runs do not page-fault every step.

A batched run over S seeds allocates temporaries of S·d elements each step (2 MiB for Adam's
``sqrt(v)`` at S = 256, d = 1000, float64). glibc's ``malloc`` serves blocks of that size with
``mmap`` and, once the free space at the top of the heap exceeds ``M_TRIM_THRESHOLD``, gives it
back to the OS; the next step faults every page in again. On the 2-core benchmark machine this
system time, not arithmetic, was most of a batched Adam step whenever it happened: the same batched
run measured 30k seed-steps/s with glibc's defaults and 100k–120k with the two thresholds below
raised (glibc's dynamic threshold sometimes avoids the trimming, so the default case is erratic).

:func:`retain_freed_memory` raises them through ``mallopt`` (``man 3 mallopt``): allocations below
``mmap_threshold`` come from the heap, and up to ``trim_threshold`` bytes of freed heap are kept
for reuse. It changes how memory is reused, never a computed value. It is process-wide, so the
``verify`` command, its rate-sweep workers and the test session call it (``OPTVERIFY_MALLOC=system``
turns that off), and the library itself never does; call it yourself before a long batched run. Where ``mallopt`` is missing (not Linux/glibc) it does nothing
and returns ``False``.

=====================  ===========  ==================================================================
argument               default      source
=====================  ===========  ==================================================================
``mmap_threshold``     32 MiB       ours: glibc's largest allowed value on 64-bit (``HEAP_MAX_SIZE/2``)
``trim_threshold``     256 MiB      ours: a few batched steps' worth of temporaries
=====================  ===========  ==================================================================
"""

from __future__ import annotations

import ctypes
import os
import sys

from algorithms.validation import check_choice, check_int

__all__ = ["retain_freed_memory", "retain_unless_disabled", "ENV_VAR", "STATUS"]

#: set to ``system`` to keep glibc's defaults in the ``verify`` command and the tests
ENV_VAR = "OPTVERIFY_MALLOC"

#: ``mallopt`` parameter numbers from glibc's ``<malloc.h>``
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MiB = 1 << 20

#: what this process last asked for (reported by ``verify bench``); ``applied`` is False until set
STATUS = {"retain_freed_memory": False, "mmap_threshold": None, "trim_threshold": None}


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded into this process
    except (OSError, AttributeError):  # no glibc (e.g. musl has no mallopt)
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def retain_freed_memory(mmap_threshold: int = 32 * MiB, trim_threshold: int = 256 * MiB) -> bool:
    """Raise glibc's mmap and trim thresholds; ``True`` when both were set (idempotent)."""
    mmap_threshold = check_int("mmap_threshold", mmap_threshold, minimum=1, maximum=32 * MiB)
    trim_threshold = check_int("trim_threshold", trim_threshold, minimum=1, maximum=2**31 - 1)
    mallopt = _mallopt()
    if mallopt is None:
        return False
    applied = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
    if applied:
        STATUS.update(retain_freed_memory=True, mmap_threshold=mmap_threshold, trim_threshold=trim_threshold)
    return applied


def retain_unless_disabled() -> bool:
    """:func:`retain_freed_memory`, unless the environment sets ``OPTVERIFY_MALLOC=system``."""
    choice = check_choice(ENV_VAR, os.environ.get(ENV_VAR, "retain"), ("retain", "system"))
    return choice == "retain" and retain_freed_memory()
