"""``python -m pipeline``: see :mod:`pipeline.cli`."""

import sys

from pipeline.threads import apply_wait_policy

# Before torch loads: OpenMP's wait policy (pipeline/threads.py: PASSIVE when the cores are already busy, where
# spinning threads made training 6-10x slower on a 2-core machine; OpenMP's faster default when they are not).
apply_wait_policy()

from pipeline.cli import main  # noqa: E402

sys.exit(main())
