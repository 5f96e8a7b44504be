"""Test-session settings.

One intra-op thread: the tests use small tensors, for which a second OpenMP thread costs more in
synchronisation than it gains (and contends with other processes on a 2-core CI machine). Results
do not depend on this; speed is measured in `verify bench`, never in tests.
Freed memory stays in the heap (synthetic.allocator), as in the `verify` command.
"""

import torch

from synthetic.allocator import retain_unless_disabled

torch.set_num_threads(1)
retain_unless_disabled()
