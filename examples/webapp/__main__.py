"""``python -m examples.webapp``: start the web app (see ``README.md`` beside this file)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs a hub; never wait for one
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .cli import main  # noqa: E402

raise SystemExit(main())
