"""``python -m pipeline``: see :mod:`pipeline.cli`."""

import os
import sys

# Before torch loads: OpenMP threads that spin while waiting make training 6-10x slower when the
# cores are shared with other work (measured on a 2-core machine); passive waiting costs nothing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pipeline.cli import main  # noqa: E402

sys.exit(main())
