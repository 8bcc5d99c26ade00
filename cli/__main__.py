"""``python -m cli``: the same as the ``ferry`` command."""

import sys

from cli import main

sys.exit(main())
