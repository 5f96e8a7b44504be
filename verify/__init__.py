"""Verification checks and the ``verify`` command (``python -m verify``)."""
