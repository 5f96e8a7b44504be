"""GPU transformer validation: the same reference optimizers on a LLaMA-60M-shaped model.

* :mod:`.data`  — a synthetic byte language (a hidden Markov model) whose optimal cross-entropy is
  computed exactly on the evaluation stream by the forward algorithm, so ``loss − H*`` is an exact
  optimality gap. Generated on the device; nothing is downloaded.
* :mod:`synthetic.llama` — the LLaMA-style decoder (RMSNorm, SwiGLU, rotary attention) in GaLore's 60M
  shape with a byte vocabulary (256); the memory totals build the same model on the ``meta`` device.
* :mod:`.train` — the training loop and the per-method parameter routing; writes JSON results.
"""
