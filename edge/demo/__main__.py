"""``python -m edge.demo``: see ``edge.demo.main``."""

import sys

from edge.demo.main import main

sys.exit(main())
