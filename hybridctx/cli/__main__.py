"""``python -m hybridctx.cli``: the same entry point as the ``hybridctx`` script."""

import sys

from hybridctx.cli.app import main

sys.exit(main())
