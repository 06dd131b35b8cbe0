"""``python -m edge.demo``: see ``edge.demo.command``."""

import sys

from edge.demo.command import main

sys.exit(main())
