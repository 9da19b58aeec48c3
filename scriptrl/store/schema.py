"""The run database's tables, the schema version this code reads, and the SQL the reads share.

``SCHEMA_VERSION`` only ever grows: a run written by a newer scriptrl is refused on open rather
than half-read.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
DB_NAME = "run.sqlite"

# AUTOINCREMENT on programs: an id, once committed, is never handed to another program even
# if rows are ever deleted, so ids in logs, reports and best_policy.py headers stay unambiguous.
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE config (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
CREATE TABLE programs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    iteration INTEGER NOT NULL,
    island INTEGER,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    norm_hash TEXT NOT NULL,
    parents TEXT NOT NULL,
    generator TEXT NOT NULL,
    change TEXT NOT NULL,
    temperature REAL,
    note TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    error TEXT
);
CREATE INDEX programs_norm_hash ON programs (norm_hash);
CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    program_id INTEGER NOT NULL REFERENCES programs (id),
    split TEXT NOT NULL,
    stage TEXT NOT NULL,
    episodes INTEGER NOT NULL,
    mean REAL,
    std REAL,
    ci_lo REAL,
    ci_hi REAL,
    median REAL,
    min REAL,
    max REAL,
    env_steps INTEGER NOT NULL,
    seconds REAL NOT NULL,
    seeds TEXT NOT NULL,
    failures TEXT NOT NULL,
    digest TEXT NOT NULL,
    env_id TEXT,
    gymnasium_version TEXT,
    isolation TEXT NOT NULL,
    program_sha256 TEXT,
    notice TEXT
);
CREATE INDEX evaluations_program_split ON evaluations (program_id, split);
CREATE TABLE calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    generator TEXT NOT NULL,
    model TEXT,
    program_id INTEGER REFERENCES programs (id),
    latency_s REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    temperature REAL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_kind ON events (kind);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_JSON_COLUMNS = {
    "programs": ("parents",),
    "evaluations": ("seeds", "failures", "digest", "isolation"),
    "events": ("data",),
}
_STATE_KEY = "search"
_TOP_TRAIN = """
    WITH agg AS (
        SELECT program_id, SUM(mean * episodes) / SUM(episodes) AS mean, SUM(episodes) AS episodes,
               SUM(env_steps) AS env_steps, SUM(seconds) AS seconds, MAX(id) AS evaluation_id
        FROM evaluations WHERE split = ? AND mean IS NOT NULL AND episodes > 0
              AND (? IS NULL OR program_id = ?)  -- one program's score, or every program's
        GROUP BY program_id
    )
    SELECT p.*, a.evaluation_id AS evaluation_id, 'train' AS stage, a.episodes AS episodes, a.mean AS mean,
           NULL AS std, NULL AS ci_lo, NULL AS ci_hi, NULL AS median,
           a.env_steps AS env_steps, a.seconds AS seconds
    FROM agg a JOIN programs p ON p.id = a.program_id
    ORDER BY a.mean DESC, a.episodes DESC, p.id
    LIMIT ?
"""


# --------------------------------------------------------------------------- JSON
