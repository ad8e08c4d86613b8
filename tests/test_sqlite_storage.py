"""The single-machine deployment's SQLite storage (runtime/sqlite_storage.py): the same
databases as Dagster's own, set up once."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, EventRecordsFilter, asset, materialize
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite import sqlite_run_storage
from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage

from vomage_dagster.local.deployment.daemon import prepare_home
from vomage_dagster.runtime import sqlite_storage
from vomage_dagster.runtime.sqlite_storage import FastSqliteEventLogStorage, FastSqliteRunStorage
from vomage_dagster.testing.dagster_events import check_planned, engine_event, planned


def _schema(path: Path) -> tuple:
    with sqlite3.connect(path) as conn:
        tables = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        stamp = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()
    return tables, stamp, mode


def test_a_run_database_is_the_one_dagster_makes(tmp_path):
    rid = str(uuid.uuid4())
    theirs = SqliteEventLogStorage(str(tmp_path / "dagster"))
    ours = FastSqliteEventLogStorage(str(tmp_path / "fast"))
    for storage in (theirs, ours):
        storage.store_event(planned(rid, "a"))
    made = _schema(Path(ours.path_for_shard(rid)))
    assert made == _schema(Path(theirs.path_for_shard(rid)))
    assert made[1] and made[2] == ("wal",)
    assert not list((tmp_path / "fast").glob("*.tmp"))  # the copy was linked into place, nothing left beside it


def test_events_written_by_one_process_are_read_by_another_without_alembic(tmp_path, monkeypatch):
    rid = str(uuid.uuid4())
    writer = FastSqliteEventLogStorage(str(tmp_path))
    for key in ("a", "b"):
        writer.store_event(planned(rid, key))
    writer.store_event(engine_event(rid))

    def no_alembic(*_a, **_k):
        raise AssertionError("the stamp is read with one query, not alembic's scripts")

    monkeypatch.setattr(sqlite_event_log, "check_alembic_revision", no_alembic)
    reader = FastSqliteEventLogStorage(str(tmp_path))  # another process: its own storage, nothing initialised
    reader.store_event(engine_event(rid))
    kinds = [e.dagster_event.event_type_value for e in reader.get_logs_for_run(rid)]
    assert kinds == ["ASSET_MATERIALIZATION_PLANNED"] * 2 + ["ENGINE_EVENT"] * 2
    assert len(writer.get_logs_for_run(rid)) == 4


def test_a_database_dagster_made_is_used_as_it_is(tmp_path):
    rid = str(uuid.uuid4())
    SqliteEventLogStorage(str(tmp_path)).store_event(planned(rid, "a"))
    ours = FastSqliteEventLogStorage(str(tmp_path))
    ours.store_event(planned(rid, "b"))
    assert [e.dagster_event.asset_key for e in ours.get_logs_for_run(rid)] == [AssetKey("a"), AssetKey("b")]


def test_an_empty_file_in_the_way_is_set_up_by_dagster(tmp_path):
    """Another process opened the run's database before setting it up (SQLite creates the
    file): the copy is not linked over it, and Dagster's own set-up runs."""
    rid = str(uuid.uuid4())
    ours = FastSqliteEventLogStorage(str(tmp_path))
    Path(ours.path_for_shard(rid)).touch()
    ours.store_event(planned(rid, "a"))
    assert len(ours.get_logs_for_run(rid)) == 1
    assert _schema(Path(ours.path_for_shard(rid)))[1]


def test_processes_creating_the_same_run_database_at_once_share_one(tmp_path):
    rid = str(uuid.uuid4())
    storages = [FastSqliteEventLogStorage(str(tmp_path)) for _ in range(6)]
    start = threading.Barrier(len(storages))
    errors: list[BaseException] = []

    def write(storage: FastSqliteEventLogStorage, i: int) -> None:
        try:
            start.wait()
            storage.store_event(planned(rid, f"k{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, i)) for i, s in enumerate(storages)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(storages[0].get_logs_for_run(rid)) == len(storages)


def test_engines_kept_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_storage, "ENGINES", 4)
    ours = FastSqliteEventLogStorage(str(tmp_path))
    rids = [str(uuid.uuid4()) for _ in range(7)]
    for rid in rids:
        ours.store_event(engine_event(rid))
    assert len(ours._engines) == 4  # noqa: SLF001
    assert all(len(ours.get_logs_for_run(rid)) == 1 for rid in rids)


@pytest.fixture
def local_instance(tmp_path):
    home = prepare_home(tmp_path, runs="spawn")
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance, home


def test_the_local_deployment_uses_it_on_dagsters_own_files(local_instance):
    instance, home = local_instance

    @asset
    def number() -> int:
        return 7

    result = materialize([number], instance=instance)
    assert result.success
    assert isinstance(instance.event_log_storage, FastSqliteEventLogStorage)
    assert isinstance(instance.run_storage, FastSqliteRunStorage)
    assert (home / "history" / "runs.db").exists()
    assert (home / "history" / "runs" / f"{result.run_id}.db").exists()
    assert instance.get_latest_materialization_event(AssetKey("number")).run_id == result.run_id
    assert instance.get_run_by_id(result.run_id).is_success


def test_a_runs_planned_events_written_at_once_are_what_one_at_a_time_writes(tmp_path):
    keys = ["a", "b", "c"]
    ones, batch = (FastSqliteEventLogStorage(str(tmp_path / name)) for name in ("ones", "batch"))
    rid = str(uuid.uuid4())
    events = [planned(rid, key) for key in keys] + [check_planned(rid, key) for key in keys[:2]]
    for event in events:
        ones.store_event(event)
    batch.store_event_batch(events)

    def seen(storage: FastSqliteEventLogStorage) -> tuple:
        logs = [(e.dagster_event.event_type_value, e.dagster_event.asset_key) for e in storage.get_logs_for_run(rid)]
        indexed = [len(storage.get_event_records(EventRecordsFilter(
            event_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=AssetKey(k)))) for k in keys]
        checks = [[(r.run_id, r.status.value) for r in storage.get_asset_check_execution_history(
            AssetCheckKey(AssetKey(k), "ok"), limit=5)] for k in keys]
        return logs, indexed, checks, sorted(k.to_string() for k in storage.all_asset_keys())

    assert seen(batch) == seen(ones)
    assert seen(batch)[1] == [1, 1, 1]
    assert seen(batch)[2] == [[(rid, "PLANNED")], [(rid, "PLANNED")], []]


def test_a_batch_of_other_events_is_written_one_at_a_time(tmp_path):
    ours = FastSqliteEventLogStorage(str(tmp_path))
    rid = str(uuid.uuid4())
    ours.store_event_batch([planned(rid, "a"), engine_event(rid)])
    assert [e.dagster_event.event_type_value for e in ours.get_logs_for_run(rid)] == [
        "ASSET_MATERIALIZATION_PLANNED", "ENGINE_EVENT"]


def test_an_instance_checks_the_runs_and_schedules_databases_once_per_process(local_instance, monkeypatch):
    """A Celery run worker builds an instance for every run: only the first pays alembic's
    check; a database made again since is checked again."""
    _first, home = local_instance
    calls = []
    for module in (sqlite_run_storage, sqlite_schedule_storage):
        real = module.check_alembic_revision
        monkeypatch.setattr(module, "check_alembic_revision",
                            lambda *a, _real=real, **k: calls.append(1) or _real(*a, **k))
    with DagsterInstance.from_config(str(home)) as again:
        assert again.get_runs(limit=1) == [] and calls == []
    shutil.rmtree(home / "history")
    shutil.rmtree(home / "schedules")
    with DagsterInstance.from_config(str(home)) as fresh:
        assert fresh.get_runs(limit=1) == [] and len(calls) == 2
