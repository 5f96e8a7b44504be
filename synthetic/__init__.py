"""Smooth non-convex problems with known constants, calibrated noise, and a batched many-seed runner."""
