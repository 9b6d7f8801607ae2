"""`python -m ovbench` (what torchrun launches)."""

import sys

from ovbench.cli import main

sys.exit(main())
