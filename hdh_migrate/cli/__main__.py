"""``python -m hdh_migrate.cli``: the same as the ``hdh-migrate`` console script."""

import sys

from hdh_migrate.cli.main import main

sys.exit(main())
