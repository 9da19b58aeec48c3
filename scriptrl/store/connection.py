"""Opening the run database: WAL journaling, explicit transactions, foreign keys on."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(db: Path, must_exist: bool) -> sqlite3.Connection:
    """A connection to ``db`` in the store's journaling mode; ``must_exist`` never creates the file."""
    # mode=rw never creates a file: opening a typo'd path must not leave an empty run behind.
    uri = db.resolve().as_uri() + ("?mode=rw" if must_exist else "?mode=rwc")
    # isolation_level=None: the sqlite3 module must not open transactions behind our back;
    # transaction() issues BEGIN IMMEDIATE / COMMIT itself, so one step is exactly one commit.
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        # WAL + synchronous=NORMAL is durable against a crash of this process (kill -9,
        # OOM): a commit has been written to the WAL file with write(2) before COMMIT
        # returns, and the kernel keeps that data even if the process dies the next
        # instant. Only an OS crash or power loss can drop the last few commits (never
        # corrupting the database); FULL would fsync every step to cover that too, at a
        # cost per program that a learning loop should not pay.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch to WAL journaling (got {mode})")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn
