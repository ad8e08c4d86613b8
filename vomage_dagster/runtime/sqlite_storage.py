"""Dagster's SQLite storage, without the per-run database setup on every event's path.

The single-machine deployment keeps Dagster's history in SQLite (`local/deployment/daemon.py`):
one database for the runs, one for the schedules and, for the events, one database per run
beside a shared index. Dagster 1.13's SQLite storage pays, on the path of every recording:

- for each new run, ≈ 50 ms creating its database (tables, indexes, the alembic stamp), in
  the ingest that launches the run, before the run can be handed to a worker;
- in every other process that then writes or reads that run's events (the run worker
  first of all), a check of that stamp that reloads alembic's migration scripts from disk;
- for every Dagster instance built, the same check of the runs' and the schedules'
  databases (an instance took ≈ 30 ms), and dagster-celery builds one for every run;
- for every event, a new SQLAlchemy engine, whose statement cache starts empty, so each
  insert is compiled again; and for each of a run's planned events, a transaction on the
  run's database and another on the index.

This storage creates a run's database by copying an empty one made once per process with
Dagster's own set-up (`_template_bytes`), reads a stamp with one query instead of alembic's
scripts, checks the runs' and schedules' databases once per process, keeps one engine per
database (`ENGINES` most recent, still without pooled connections, as Dagster opens them)
and writes a run's planned events together (`store_event_batch`). What ends up on disk is
what Dagster would have written; a database it did not create, or finds without a stamp,
is set up by Dagster's own code. `python -m benchmarks.sqlite_storage` measures both storages.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# What `store_event_batch` writes together: what a run's creation plans.
BATCHED = ASSET_EVENTS | {DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}
ENGINES = 64  # a worker's runs and the index; an engine without a pool holds no file open
# Base dirs whose runs and schedules databases this process has checked, with the files'
# identities then: a database deleted and made again since is checked again.
_checked: dict[str, tuple] = {}
_checked_lock = threading.Lock()
_template_lock = threading.Lock()
_template: bytes | None = None


def _identity(paths: list[str]) -> tuple | None:
    try:
        return tuple((st.st_dev, st.st_ino) for st in map(os.stat, paths))
    except FileNotFoundError:
        return None


def stamped(path: str) -> bool:
    """Whether the database at `path` exists and carries an alembic stamp: Dagster sets a
    database up only when it has none (`SqliteEventLogStorage._initdb`)."""
    if not os.path.exists(path):
        return False
    try:
        with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as conn:
            return conn.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone() is not None
    except sqlite3.OperationalError:  # no alembic_version table yet
        return False


class FastSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's per-run SQLite event log with its databases set up once and its engines kept."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._asset_key_cols: set[str] = set()
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(self.conn_string_for_shard(shard), poolclass=NullPool,
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        self._engines[shard] = engine
        while len(self._engines) > ENGINES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's `_connect` with the engine kept: the same lock, set-up and transaction.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A run's planned events (its assets' and its checks', written as the run is
        created when DAGSTER_EVENT_BATCH_SIZE is set) in one transaction on the run's
        database and one on the index, where Dagster's SQLite storage opens and commits
        both for each event; each planned check's execution row is then written as Dagster
        writes it. Other batches: one event at a time, as Dagster does."""
        runs = {event.run_id for event in events}
        if len(runs) != 1 or not all(e.is_dagster_event and e.dagster_event_type in BATCHED for e in events):
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(runs.pop()) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:  # as `store_event` mirrors each into the index
            ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            if any(event_id is None for event_id in ids):
                raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
            assets = [(e, i) for e, i in zip(events, ids, strict=True) if e.dagster_event_type in ASSET_EVENTS]
            if assets:
                self._store_asset_event_tags(conn, [e for e, _ in assets], [i for _, i in assets])
            for event, event_id in assets:
                self._store_asset_event(conn, event, event_id)
        for event, event_id in zip(events, ids, strict=True):
            if event.dagster_event_type in ASSET_CHECK_EVENTS:
                self.store_asset_check_event(event, event_id)

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        # Dagster inspects the index's schema on every asset event; a column, once there, stays.
        if column_name in self._asset_key_cols:
            return True
        found = super()._has_asset_key_col_on_connection(conn, column_name)
        if found:
            self._asset_key_cols.add(column_name)
        return found

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        path = engine.url.database
        if not path or path == ":memory:":
            super()._initdb(engine, for_index_shard)
            return
        if stamped(path):
            return
        if not for_index_shard and self._copy_template(path):
            return
        super()._initdb(engine, for_index_shard)

    def _copy_template(self, path: str) -> bool:
        """Put a fresh run database at `path` unless something is there already; whether it did.
        Written beside it under another name and linked into place, so no process ever
        opens a half-written copy, and one that lost the race leaves the winner's."""
        if os.path.exists(path):
            return False
        partial = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(partial, "wb") as out:
                out.write(self._template_bytes())
                out.flush()
                os.fsync(out.fileno())
            os.link(partial, path)
            return True
        except OSError:  # taken meanwhile, or no hard links here: Dagster's own set-up decides
            return False
        finally:
            try:
                os.unlink(partial)
            except FileNotFoundError:
                pass

    def _template_bytes(self) -> bytes:
        """An empty run database as Dagster's `_initdb` makes it, made once per process."""
        global _template
        with _template_lock:
            if _template is None:
                with tempfile.TemporaryDirectory(prefix="vomage-shard-") as tmp:
                    path = os.path.join(tmp, "template.db")
                    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
                    SqliteEventLogStorage._initdb(self, engine)
                    engine.dispose()
                    with sqlite3.connect(path) as conn:  # the WAL folded in: the file alone is whole
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    with open(path, "rb") as f:
                        _template = f.read()
            return _template


class FastSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage with its engine kept (its statement cache with it)."""

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(conn_string, inst_data)
        self._kept = create_engine(self._conn_string, poolclass=NullPool)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._kept.connect() as conn, conn.begin():
            yield conn


class FastSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (`storage: sqlite:`, the same files under `base_dir`) with
    the two storages above. dagster.yaml: `storage: custom:` naming this class.

    Every Dagster instance built checks the runs' and the schedules' databases against
    alembic's scripts, and a Celery run worker builds one for each run: here that check is
    made by the first instance of a process, as Dagster makes it, and not again."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        runs, schedules = os.path.join(base_dir, "history", ""), os.path.join(base_dir, "schedules")
        files = [os.path.join(runs, "runs.db"), os.path.join(schedules, "schedules.db")]
        with _checked_lock:
            if (known := _checked.get(base_dir)) is not None and known == _identity(files):
                self._run_storage = FastSqliteRunStorage(create_db_conn_string(runs, "runs"))
                self._schedule_storage = SqliteScheduleStorage(create_db_conn_string(schedules, "schedules"))
            else:
                self._run_storage = FastSqliteRunStorage.from_local(runs)
                self._schedule_storage = SqliteScheduleStorage.from_local(schedules)
                _checked[base_dir] = _identity(files)
        self._event_log_storage = FastSqliteEventLogStorage(os.path.join(base_dir, "history", "runs", ""))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value) -> FastSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
