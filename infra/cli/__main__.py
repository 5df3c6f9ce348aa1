"""`python -m infra.cli`: the same as the `wagate` command."""

import sys

from infra.cli import main

sys.exit(main())
