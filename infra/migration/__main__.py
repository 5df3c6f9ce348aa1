"""`python -m infra.migration migrate sessions-to-accounts ...`."""

import sys

from infra.migration.cli import main

sys.exit(main())
