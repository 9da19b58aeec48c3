"""The run store: one folder per learning run, holding everything needed to report on it or resume it.

A run folder holds ``run.sqlite`` (programs, evaluations, generator calls, events and the
saved search state), ``best_policy.py`` and later a report. SQLite is the single source of
truth because a learning run can be killed at any moment (``kill -9``, OOM killer, a closed
laptop): each recorded step is one transaction, so reopening the folder shows exactly the
steps that committed, never half of one and never one twice, and the search resumes from the
state saved in the same transaction as the programs it describes.

The package: ``schema`` (tables), ``encoding`` (the JSON columns), ``records`` (typed rows),
``database`` (``RunStore``: connection, transactions, typed reads and writes), ``best_policy``,
``atomic`` (the one atomic file write), ``listing`` (``scriptrl runs``) and ``config_spelling``.
"""

from scriptrl.store.atomic import write_atomic, write_output
from scriptrl.store.best_policy import BEST_POLICY_NAME, policy_header, write_best_policy
from scriptrl.store.config_spelling import config_value
from scriptrl.store.database import RunStore
from scriptrl.store.encoding import dumps, to_plain
from scriptrl.store.listing import list_runs, run_status, run_summary
from scriptrl.store.records import CallRecord
from scriptrl.store.schema import DB_NAME, SCHEMA_VERSION

__all__ = [
    "BEST_POLICY_NAME",
    "DB_NAME",
    "SCHEMA_VERSION",
    "CallRecord",
    "RunStore",
    "config_value",
    "dumps",
    "list_runs",
    "policy_header",
    "run_status",
    "run_summary",
    "to_plain",
    "write_atomic",
    "write_output",
    "write_best_policy",
]
