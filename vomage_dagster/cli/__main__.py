"""`python -m vomage_dagster.cli`: the same as the `vomage` command."""

import sys

from vomage_dagster.cli import main

sys.exit(main())
