"""The run store: one folder per learning run, holding everything needed to report on it or resume it.

A run folder holds ``run.sqlite`` (programs, evaluations, generator calls, events and the
saved search state), ``best_policy.py`` and later a report. SQLite is the single source of
truth because a learning run can be killed at any moment (``kill -9``, OOM killer, a closed
laptop): each recorded step is one transaction, so reopening the folder shows exactly the
steps that committed, never half of one and never one twice, and the search resumes from the
state saved in the same transaction as the programs it describes.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import os
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scriptrl.errors import UserError

if TYPE_CHECKING:  # importing the evaluator pulls in gymnasium; `scriptrl runs` should not pay for it
    from scriptrl.evaluate import EvalResult

SCHEMA_VERSION = 1
DB_NAME = "run.sqlite"
BEST_POLICY_NAME = "best_policy.py"

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
        FROM evaluations WHERE split = ? AND mean IS NOT NULL AND episodes > 0 GROUP BY program_id
    )
    SELECT p.*, a.evaluation_id AS evaluation_id, 'train' AS stage, a.episodes AS episodes, a.mean AS mean,
           NULL AS std, NULL AS ci_lo, NULL AS ci_hi, NULL AS median, a.env_steps AS env_steps, a.seconds AS seconds
    FROM agg a JOIN programs p ON p.id = a.program_id
    ORDER BY a.mean DESC, a.episodes DESC, p.id
    LIMIT ?
"""


# --------------------------------------------------------------------------- JSON


def policy_header(
    env,
    champion: Mapping[str, Any],
    splits: Mapping[str, Sequence[int]],
    audit: float | None,
    written_by: str,
    method: Mapping[str, Any] | None = None,
    dev_label: str | None = None,
) -> dict[str, Any]:
    """The comment block on top of best_policy.py: what scored what on which seeds, and who wrote
    it; ``env`` is a resolved environment, ``splits`` the run's dev/holdout/audit seed ranges.
    ``dev_label`` names the selection score when it is not the dev split (the training stream)."""
    dev, hold, aud = splits["dev"], splits["holdout"], splits["audit"]
    h: dict[str, Any] = {
        "env": env.label(),
        "gymnasium": env.gymnasium_version,
        "program id": champion.get("id"),
    }
    h.update(method or {})
    h[dev_label or f"dev mean (seeds {dev[0]}-{dev[1] - 1})"] = round(champion.get("dev", 0.0), 3)
    h[f"holdout mean (seeds {hold[0]}-{hold[1] - 1})"] = round(champion.get("holdout", 0.0), 3)
    h["holdout 95% CI"] = [round(x, 3) for x in champion.get("ci95", [])]
    if audit is not None:
        h[f"audit mean (seeds {aud[0]}-{aud[1] - 1})"] = round(audit, 3)
    h["written by"] = written_by
    return h


def to_plain(obj: Any) -> Any:
    """Turn results, numpy values and tuples into plain JSON values.

    Evaluation results carry numpy scalars and arrays from the environment, and a NaN mean
    (no episodes) must not become the non-standard ``NaN`` token that other JSON readers
    (a browser report, jq) reject, so non-finite floats become ``null``.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    # numpy scalars and arrays, recognized without importing numpy
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return to_plain(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k.value if isinstance(k, enum.Enum) else k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((to_plain(v) for v in obj), key=repr)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON: {obj!r:.80}")


def dumps(obj: Any) -> str:
    """Compact, strict JSON: the store's one encoder, so every column decodes the same way."""
    return json.dumps(to_plain(obj), separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _real(x: Any) -> float | None:
    """A float column value; SQLite would store NaN as NULL anyway, this makes it explicit."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _now() -> float:
    return time.time()


def _one_line(value: Any) -> str:
    """Header values become Python comments: a newline would turn the rest into code."""
    if isinstance(value, str):
        text = value
    else:
        text = dumps(value) if isinstance(value, Mapping | list | tuple) else str(value)
    return " ".join(text.replace("\x00", " ").splitlines()).strip()


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """One generator call as the calls table keeps it (offline calls have no tokens, cost or model)."""

    generator: str
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None
    program_id: int | None = None
    ok: bool = True
    error: str | None = None
    temperature: float | None = None


# --------------------------------------------------------------------------- the store


class RunStore:
    """One run folder and its database connection.

    Safe to share between threads: every method holds one re-entrant lock, and a
    ``transaction()`` holds it until commit, so another thread's writes never land inside it.
    Not to be shared across processes by fork; each process opens its own store.
    """

    def __init__(self, run_dir: Path, conn: sqlite3.Connection, config: dict) -> None:
        """Use ``create`` or ``open``; this only wires up an already-checked connection."""
        self.run_dir = run_dir
        self.config = config
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._depth = 0

    # ----------------------------------------------------------------- opening

    @staticmethod
    def _connect(db: Path, must_exist: bool) -> sqlite3.Connection:
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

    @classmethod
    def create(cls, run_dir: str | Path, config: dict) -> RunStore:
        """Start a new run; refuses a folder that already holds one so no run is ever mixed into another."""
        run_dir = Path(run_dir).expanduser()
        db = run_dir / DB_NAME
        already = f"{run_dir} already holds a run (use --resume {run_dir} or another --run-dir)"
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(f"{run_dir} is a file, not a folder (choose another --run-dir)")
        config_json = dumps(config)  # a config that cannot be stored fails before the folder is made
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            conn = cls._connect(db, must_exist=False)
        except (OSError, sqlite3.Error) as e:
            raise UserError(f"cannot create a run in {run_dir}: {e} (choose another --run-dir)") from None
        has_meta_sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        try:
            if conn.execute(has_meta_sql).fetchone():  # fast answer, even while that run is writing
                raise UserError(already)
            # Checked again under the write lock, so two processes creating the same folder at once
            # cannot both succeed. A file left without tables by a create killed half-way (or an
            # empty file) is simply initialized; the schema is created statement by statement
            # because executescript() would commit first and split the create in two.
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute(has_meta_sql).fetchone():
                conn.execute("ROLLBACK")
                raise UserError(already)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            created = datetime.now(UTC).isoformat(timespec="seconds")
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("schema_version", str(SCHEMA_VERSION)), ("created", created)],
            )
            conn.execute("INSERT INTO config (id, json) VALUES (1, ?)", (config_json,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
        return cls(run_dir, conn, json.loads(config_json))

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """Reopen a run to resume or report on it, refusing anything that is not one this version can read."""
        run_dir = Path(run_dir).expanduser()
        db = run_dir / DB_NAME
        if not run_dir.is_dir():
            raise UserError(
                f"{run_dir} is not a folder (give the --run-dir of an existing run; `scriptrl runs` lists them)"
            )
        if not db.is_file():
            raise UserError(
                f"{run_dir} is not a run folder: it has no {DB_NAME} (`scriptrl runs` lists run folders)"
            )
        try:
            conn = cls._connect(db, must_exist=True)
        except sqlite3.Error as e:
            raise UserError(
                f"{db} cannot be opened as a run database ({e}); restore it or start a new run"
            ) from None
        try:
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            version = int(rows["schema_version"])
            config_row = conn.execute("SELECT json FROM config WHERE id = 1").fetchone()
            config = json.loads(config_row[0]) if config_row else {}
        except (sqlite3.Error, KeyError, ValueError, TypeError) as e:
            conn.close()
            raise UserError(
                f"{db} is not a readable run database ({e}); restore it or start a new run"
            ) from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise UserError(
                f"{run_dir} was written by a newer scriptrl (run schema {version}, this one reads {SCHEMA_VERSION});"
                " upgrade scriptrl to open it"
            )
        return cls(run_dir, conn, config)

    def close(self) -> None:
        """Release the database; an unfinished transaction is rolled back, as a crash would."""
        with self._lock:
            if self._conn is None:
                return
            try:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            finally:
                self._conn.close()
                self._conn = None
                self._depth = 0

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.run_dir)!r})"

    @property
    def db_path(self) -> Path:
        return self.run_dir / DB_NAME

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the run store for {self.run_dir} is closed")
        return self._conn

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make several records one step: all of them survive a crash, or none does.

        BEGIN IMMEDIATE takes the write lock up front, so a step never fails half-way with
        "database is locked" after doing work. A nested call becomes a savepoint inside the
        outer transaction: there is still exactly one commit, at the outer end, but an
        exception caught between the two levels undoes only the inner records.
        """
        with self._lock:
            conn = self._db()
            if self._depth == 0:
                conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # SQLite may already have rolled back (disk full)
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    self._depth = 0
            else:
                name = f"scriptrl_sp{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield
                except BaseException:
                    if conn.in_transaction:
                        conn.execute(f"ROLLBACK TO {name}")
                        conn.execute(f"RELEASE {name}")
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.transaction():
            cur = self._db().execute(sql, params)
            return int(cur.lastrowid or 0) if sql.lstrip().upper().startswith("INSERT") else cur.rowcount

    def _rows(self, table: str, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        with self._lock:
            rows = self._db().execute(sql, params).fetchall()
        json_cols = _JSON_COLUMNS.get(table, ())
        out = []
        for row in rows:
            d = dict(row)
            for col in json_cols:
                if col in d and d[col] is not None:
                    d[col] = json.loads(d[col])
            if table == "calls":
                d["ok"] = bool(d["ok"])
            out.append(d)
        return out

    # ----------------------------------------------------------------- programs

    def add_program(
        self,
        source: str,
        norm_hash: str,
        parents: Sequence[int],
        generator: str,
        change: str,
        temperature: float,
        island: int | None,
        iteration: int,
        note: str = "",
        status: str = "new",
        error: str | None = None,
    ) -> int:
        """Record a candidate before it is evaluated, so a crash mid-evaluation still shows what was tried."""
        sha = hashlib.sha256(source.encode("utf-8")).hexdigest()
        return self._write(
            "INSERT INTO programs (created, iteration, island, source, sha256, norm_hash, parents, generator,"
            " change, temperature, note, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _now(),
                int(iteration),
                None if island is None else int(island),
                source,
                sha,
                norm_hash,
                dumps([int(p) for p in parents]),
                generator,
                change,
                _real(temperature),
                note,
                status,
                error,
            ),
        )

    def set_program_status(self, program_id: int, status: str, error: str | None = None) -> None:
        """Mark the outcome; a wrong id is a bug in the caller, so it raises instead of passing silently."""
        if (
            self._write(
                "UPDATE programs SET status = ?, error = ? WHERE id = ?", (status, error, int(program_id))
            )
            != 1
        ):
            raise KeyError(f"no program {program_id} in {self.run_dir}")

    def program(self, program_id: int) -> dict:
        """One program row; ``KeyError`` for an unknown id so a stale id never reads as an empty program."""
        rows = self._rows("programs", "SELECT * FROM programs WHERE id = ?", (int(program_id),))
        if not rows:
            raise KeyError(f"no program {program_id} in {self.run_dir}")
        return rows[0]

    def programs(self) -> list[dict]:
        return self._rows("programs", "SELECT * FROM programs ORDER BY id")

    def find_by_norm_hash(self, norm_hash: str) -> int | None:
        """The first program with this normalized form, so the loop can skip re-evaluating a duplicate."""
        with self._lock:
            row = (
                self._db()
                .execute("SELECT id FROM programs WHERE norm_hash = ? ORDER BY id LIMIT 1", (norm_hash,))
                .fetchone()
            )
        return None if row is None else int(row[0])

    # ----------------------------------------------------------------- evaluations

    def add_evaluation(
        self, program_id: int, split: str, stage: str, result: EvalResult | Mapping[str, Any]
    ) -> int:
        """Keep the statistics and a compact digest, not every observation: enough to rank, report and prompt."""
        r = _result_fields(result)
        return self._write(
            "INSERT INTO evaluations (created, program_id, split, stage, episodes, mean, std, ci_lo, ci_hi,"
            " median, min, max, env_steps, seconds, seeds, failures, digest, env_id, gymnasium_version,"
            " isolation, program_sha256, notice)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _now(),
                int(program_id),
                split,
                stage,
                r["episodes"],
                r["mean"],
                r["std"],
                r["ci_lo"],
                r["ci_hi"],
                r["median"],
                r["min"],
                r["max"],
                r["env_steps"],
                r["seconds"],
                dumps(r["seeds"]),
                dumps(r["failures"]),
                dumps(r["digest"]),
                r["env_id"],
                r["gymnasium_version"],
                dumps(r["isolation"]),
                r["program_sha256"],
                r["notice"],
            ),
        )

    def evaluations(
        self, program_id: int | None = None, split: str | None = None, stage: str | None = None
    ) -> list[dict]:
        where, params = [], []
        for col, val in (("program_id", program_id), ("split", split), ("stage", stage)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        sql = (
            "SELECT * FROM evaluations" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        )
        return self._rows("evaluations", sql, params)

    def best_evaluation(self, program_id: int, split: str) -> dict | None:
        """The most trustworthy score on a split: the one over most episodes, the latest if tied."""
        rows = self._rows(
            "evaluations",
            "SELECT * FROM evaluations WHERE program_id = ? AND split = ? ORDER BY episodes DESC, id DESC LIMIT 1",
            (int(program_id), split),
        )
        return rows[0] if rows else None

    def selection_split(self) -> str:
        """The split this run selected programs on: the training stream for searches since fresh
        episodes per round, the fixed dev split for older runs and for baselines."""
        with self._lock:
            row = self._db().execute("SELECT 1 FROM evaluations WHERE split = 'train' LIMIT 1").fetchone()
        return "train" if row else "dev"

    def selection_score(self, program_id: int) -> dict | None:
        """A program's score where the run selected it: on the training stream its episode-weighted
        mean over every batch it played (no interval: the batches ran on different seeds), else its
        best dev evaluation."""
        if self.selection_split() == "dev":
            return self.best_evaluation(program_id, "dev")
        rows = [r for r in self.top_programs("train", 1_000_000) if r["id"] == int(program_id)]
        return rows[0] if rows else None

    def top_programs(self, split: str = "dev", n: int = 10) -> list[dict]:
        """Programs ranked by the mean of their best evaluation on ``split``; unscored programs are left out.
        On the training stream a program's score is its mean over every episode it played there
        (a search evaluates it in many small batches on fresh seeds)."""
        if split == "train":
            return self._rows("programs", _TOP_TRAIN, (split, int(n)))
        sql = """
            WITH best AS (
                SELECT e.*, ROW_NUMBER() OVER (PARTITION BY program_id ORDER BY episodes DESC, id DESC) AS rn
                FROM evaluations e WHERE split = ?
            )
            SELECT p.*, b.id AS evaluation_id, b.stage AS stage, b.episodes AS episodes, b.mean AS mean,
                   b.std AS std, b.ci_lo AS ci_lo, b.ci_hi AS ci_hi, b.median AS median,
                   b.env_steps AS env_steps, b.seconds AS seconds
            FROM best b JOIN programs p ON p.id = b.program_id
            WHERE b.rn = 1
            ORDER BY b.mean IS NULL, b.mean DESC, b.episodes DESC, p.id
            LIMIT ?
        """
        return self._rows("programs", sql, (split, int(n)))

    # ----------------------------------------------------------------- calls, events, state

    def add_call(self, call: CallRecord) -> int:
        """Every generator call, failed ones too: cost and latency are part of what a run is judged on."""
        return self._write(
            "INSERT INTO calls (created, generator, model, program_id, latency_s, prompt_tokens, completion_tokens,"
            " cost_usd, ok, error, temperature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _now(),
                call.generator,
                call.model,
                None if call.program_id is None else int(call.program_id),
                _real(call.latency_s) or 0.0,
                int(call.prompt_tokens),
                int(call.completion_tokens),
                _real(call.cost_usd) or 0.0,
                int(bool(call.ok)),
                call.error,
                _real(call.temperature),
            ),
        )

    def calls(self) -> list[dict]:
        return self._rows("calls", "SELECT * FROM calls ORDER BY id")

    def add_event(self, kind: str, data: dict | None = None) -> int:
        """A timeline entry. ``start``/``resume`` get this process's pid and host added (unless given)
        so ``list_runs`` can tell a live run from one that was killed without a ``stop``."""
        data = dict(data or {})
        if kind in ("start", "resume"):
            data.setdefault("pid", os.getpid())
            data.setdefault("host", socket.gethostname())
        return self._write(
            "INSERT INTO events (created, kind, data) VALUES (?, ?, ?)", (_now(), kind, dumps(data))
        )

    def events(self, kind: str | None = None) -> list[dict]:
        if kind is None:
            return self._rows("events", "SELECT * FROM events ORDER BY id")
        return self._rows("events", "SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,))

    def save_state(self, state: dict) -> None:
        """Replace the resume point; call it inside the step's transaction so state and records agree."""
        self._write("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (_STATE_KEY, dumps(state)))

    def load_state(self) -> dict | None:
        with self._lock:
            row = self._db().execute("SELECT value FROM state WHERE key = ?", (_STATE_KEY,)).fetchone()
        return None if row is None else json.loads(row[0])

    # ----------------------------------------------------------------- summaries

    def totals(self) -> dict:
        """Budget so far, in one statement so the numbers come from one consistent snapshot."""
        with self._lock:
            row = (
                self._db()
                .execute(
                    """SELECT
                    (SELECT COUNT(*) FROM programs) AS programs,
                    (SELECT COUNT(*) FROM evaluations) AS evaluations,
                    (SELECT COALESCE(SUM(env_steps), 0) FROM evaluations) AS env_steps,
                    (SELECT COALESCE(SUM(seconds), 0.0) FROM evaluations) AS eval_seconds,
                    (SELECT COUNT(*) FROM calls) AS calls,
                    (SELECT COUNT(*) FROM calls WHERE model IS NOT NULL) AS model_calls,
                    (SELECT COALESCE(SUM(prompt_tokens), 0) FROM calls) AS prompt_tokens,
                    (SELECT COALESCE(SUM(completion_tokens), 0) FROM calls) AS completion_tokens,
                    (SELECT COALESCE(SUM(cost_usd), 0.0) FROM calls) AS cost_usd"""
                )
                .fetchone()
            )
        return dict(row)

    def env_steps(self, stages: Sequence[str], event_kinds: Sequence[str] = ()) -> int:
        """Env steps of the evaluations in ``stages`` plus those that events of ``event_kinds`` report
        (``data.env_steps``), summed by SQLite: a budget check must not decode every row."""
        marks = ",".join("?" * len(stages)) or "NULL"
        kinds = ",".join("?" * len(event_kinds)) or "NULL"
        with self._lock:
            row = (
                self._db()
                .execute(
                    f"""SELECT
                    (SELECT COALESCE(SUM(env_steps), 0) FROM evaluations WHERE stage IN ({marks})),
                    (SELECT COALESCE(SUM(CAST(json_extract(data, '$.env_steps') AS INTEGER)), 0)
                     FROM events WHERE kind IN ({kinds}))""",
                    (*stages, *event_kinds),
                )
                .fetchone()
            )
        return int(row[0]) + int(row[1])

    def meta(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db().execute("SELECT key, value FROM meta").fetchall())

    def integrity_check(self) -> str:
        """SQLite's own verdict ("ok" or the problems found); for `doctor`-style checks and tests."""
        with self._lock:
            rows = self._db().execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    def write_best_policy(self, source: str, header: Mapping[str, Any]) -> Path:
        """Publish the current best as a standalone file that is never seen half-written.

        The temp file lives in the run folder so ``os.replace`` is a same-filesystem rename;
        the fsyncs make the new content, and then the rename, reach the disk in that order.
        """
        lines = [f"# {_one_line(k).replace(':', ' ')}: {_one_line(v)}" for k, v in header.items()]
        text = "\n".join(lines) + ("\n\n" if lines else "") + source + ("" if source.endswith("\n") else "\n")
        target = self.run_dir / BEST_POLICY_NAME
        fd, tmp = tempfile.mkstemp(prefix=".best_policy.", suffix=".tmp", dir=self.run_dir)
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the policy is meant to be read and shared
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(self.run_dir)
        return target


def _fsync_dir(path: Path) -> None:
    """Persist a rename; not every platform or filesystem can open a directory, and that is fine."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _result_fields(result: Any) -> dict[str, Any]:
    """Read an EvalResult, or a dict with its keys (``EvalResult.to_dict()`` or hand-made), into columns."""
    returns = list(_get(result, "returns", None) or [])
    episodes = list(_get(result, "episodes", None) or [])
    if isinstance(_get(result, "episodes", None), int):  # to_dict(with_episodes=False) + a count
        episodes = []
    seeds = list(_get(result, "seeds", None) or [_get(ep, "seed") for ep in episodes])
    n = len(returns) or len(episodes) or len(seeds)
    ci = _get(result, "ci95", None)
    ci_lo, ci_hi = (ci[0], ci[1]) if ci is not None else (_get(result, "ci_lo"), _get(result, "ci_hi"))
    digest = []
    for ep in episodes:
        ret = _get(ep, "ret", None)
        digest.append(
            {
                "seed": _get(ep, "seed"),
                "return": _get(ep, "return", None) if ret is None else ret,
                "length": _get(ep, "length"),
                "end": _get(ep, "end"),
                "reason": _get(ep, "reason"),
                "tail": _get(ep, "tail", []),
                "action_summary": _get(ep, "action_summary", {}),
            }
        )
    if not digest and _get(result, "digest", None):
        digest = list(_get(result, "digest"))
    return {
        "episodes": int(n),
        "mean": _real(_get(result, "mean")),
        "std": _real(_get(result, "std")),
        "ci_lo": _real(ci_lo),
        "ci_hi": _real(ci_hi),
        "median": _real(_get(result, "median")),
        "min": _real(_get(result, "min")),
        "max": _real(_get(result, "max")),
        "env_steps": int(_get(result, "env_steps", 0) or 0),
        "seconds": _real(_get(result, "seconds", 0.0)) or 0.0,
        "seeds": seeds,
        "failures": list(_get(result, "failures", None) or []),
        "digest": digest,
        "env_id": _get(result, "env_id"),
        "gymnasium_version": _get(result, "gymnasium_version"),
        "isolation": dict(_get(result, "isolation", None) or {}),
        "program_sha256": _get(result, "program_sha256"),
        "notice": _get(result, "notice"),
    }


# --------------------------------------------------------------------------- listing


def config_value(config: Mapping[str, Any], *names: str) -> Any:
    """The config layout belongs to the learning loop; accept the spellings it may use."""
    for name in names:
        value = config.get(name)
        if isinstance(value, Mapping):
            value = value.get("id") or value.get("name")
        if value not in (None, ""):
            return value
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def run_status(store: RunStore) -> str:
    """ "finished"/the stop reason, "running", "interrupted" (killed without a stop) or "created"."""
    with store._lock:
        row = (
            store._db()
            .execute(
                "SELECT kind, data FROM events WHERE kind IN ('start', 'resume', 'stop') ORDER BY id DESC LIMIT 1"
            )
            .fetchone()
        )
    if row is None:
        return "created"
    data = json.loads(row["data"]) or {}
    if row["kind"] == "stop":
        return str(data.get("status") or data.get("reason") or "stopped")
    pid, host = data.get("pid"), data.get("host")
    if isinstance(pid, int) and host == socket.gethostname():
        return "running" if _pid_alive(pid) else "interrupted"
    return "running"


def run_summary(store: RunStore) -> dict:
    """One line of ``scriptrl runs``: what was learned, on what, at what cost."""
    totals = store.totals()
    dev = store.top_programs("train", 1) or store.top_programs("dev", 1)  # selection: the training stream
    holdout = store.top_programs("holdout", 1)
    return {
        "run_dir": str(store.run_dir),
        "env": config_value(store.config, "env", "env_id"),
        "generator": config_value(store.config, "generator", "generators"),
        "created": store.meta().get("created"),
        "status": run_status(store),
        "best_dev": dev[0]["mean"] if dev else None,
        "best_dev_program": dev[0]["id"] if dev else None,
        "best_holdout": holdout[0]["mean"] if holdout else None,
        "best_holdout_program": holdout[0]["id"] if holdout else None,
        "env_steps": totals["env_steps"],
        "programs": totals["programs"],
        "cost": totals["cost_usd"],
    }


def list_runs(root: str | Path) -> list[dict]:
    """Runs under ``root`` (itself, its folders and theirs), oldest first.

    A run that cannot be read is listed with its error as status rather than hiding the
    others; the listing is how a person finds out that a run is damaged.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root} is not a folder (give the folder that holds your run folders)")
    candidates = [root]
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        candidates.append(child)
        try:
            candidates.extend(sorted(p for p in child.iterdir() if p.is_dir()))
        except OSError:
            continue
    out = []
    for d in candidates:
        if not (d / DB_NAME).is_file():
            continue
        try:
            with RunStore.open(d) as store:
                out.append(run_summary(store))
        except (UserError, sqlite3.Error) as e:
            out.append(
                {
                    "run_dir": str(d),
                    "env": None,
                    "generator": None,
                    "created": None,
                    "status": f"unreadable: {e}",
                    "best_dev": None,
                    "best_dev_program": None,
                    "best_holdout": None,
                    "best_holdout_program": None,
                    "env_steps": None,
                    "programs": None,
                    "cost": None,
                }
            )
    out.sort(key=lambda r: (r["created"] or "", r["run_dir"]))
    return out
