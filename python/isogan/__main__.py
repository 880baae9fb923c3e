"""``python -m isogan``: the ``isogan`` command line."""

import sys

from isogan.cli import main

sys.exit(main())
