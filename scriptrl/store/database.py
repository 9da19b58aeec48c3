"""``RunStore``: one run folder's database connection, its transactions and its typed reads and writes.

Each recorded step is one transaction, so a run killed at any moment reopens with exactly the
steps that committed (see the package docstring).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scriptrl.errors import UserError
from scriptrl.store.best_policy import write_best_policy
from scriptrl.store.connection import connect
from scriptrl.store.encoding import _now, _real, dumps
from scriptrl.store.records import CallRecord, _result_fields
from scriptrl.store.schema import _JSON_COLUMNS, _SCHEMA, _STATE_KEY, _TOP_TRAIN, DB_NAME, SCHEMA_VERSION

if TYPE_CHECKING:  # importing the evaluator pulls in gymnasium; `scriptrl runs` should not pay for it
    from scriptrl.evaluate import EvalResult


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

    _connect = staticmethod(connect)

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
                f"{run_dir} is not a folder"
                " (give the --run-dir of an existing run; `scriptrl runs` lists them)"
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
                f"{run_dir} was written by a newer scriptrl"
                f" (run schema {version}, this one reads {SCHEMA_VERSION});"
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
        """Keep the statistics and a compact digest, not every observation: enough to rank, report and
        prompt."""
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
        sql = "SELECT * FROM evaluations" + (" WHERE " + " AND ".join(where) if where else "")
        return self._rows("evaluations", sql + " ORDER BY id", params)

    def evaluations_after(self, program_id: int, split: str, after: int) -> list[dict]:
        """The rows newer than id ``after`` (ids only grow): what a reader that saw ``after`` lacks."""
        sql = "SELECT * FROM evaluations WHERE program_id = ? AND split = ? AND id > ? ORDER BY id"
        return self._rows("evaluations", sql, (int(program_id), split, int(after)))

    def best_evaluation(self, program_id: int, split: str) -> dict | None:
        """The most trustworthy score on a split: the one over most episodes, the latest if tied."""
        rows = self._rows(
            "evaluations",
            "SELECT * FROM evaluations WHERE program_id = ? AND split = ?"
            " ORDER BY episodes DESC, id DESC LIMIT 1",
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
        rows = self._rows("programs", _TOP_TRAIN, ("train", int(program_id), int(program_id), 1))
        return rows[0] if rows else None

    def top_programs(self, split: str = "dev", n: int = 10) -> list[dict]:
        """Programs ranked by the mean of their best evaluation on ``split``; unscored programs are left out.
        On the training stream a program's score is its mean over every episode it played there
        (a search evaluates it in many small batches on fresh seeds)."""
        if split == "train":
            return self._rows("programs", _TOP_TRAIN, (split, None, None, int(n)))
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
            "INSERT INTO calls (created, generator, model, program_id, latency_s, prompt_tokens,"
            " completion_tokens, cost_usd, ok, error, temperature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        """Publish the current best as a standalone file that is never seen half-written."""
        return write_best_policy(self.run_dir, source, header)
