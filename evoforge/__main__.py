"""``python -m evoforge``: the same command line as ``evoforge``."""

import sys

from evoforge.cli import main

sys.exit(main())
