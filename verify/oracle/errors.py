"""The oracle's input error: one line that names the option and the valid values."""

from __future__ import annotations

__all__ = ["OracleInputError"]


class OracleInputError(ValueError):
    """A setting the oracle cannot run with (unknown reference, empty shapes, unmapped state key, ...).

    The message is a single line naming the offending option and, where there is a finite set, the
    valid values. ``verify oracle`` prints it as ``verify oracle: error: <message>`` and exits 2.
    """
