"""Dagster's Postgres storage with pooled connections, in every process.

dagster-postgres opens a new connection for every storage call (SQLAlchemy `NullPool`)
except in the webserver: on the cluster every event a run writes pays a TCP handshake,
SCRAM authentication and a forked Postgres backend (≈ 8 ms and ≈ 9 ms of CPU each,
`benchmarks/pg_connections.py`). This storage keeps a small pool per instance instead,
the same pool the webserver gets (`optimize_for_webserver`), without its statement
timeout: a run worker's instance then opens a connection or two for the whole run.
Connections are recycled after `POOL_RECYCLE_S`, so none outlives a failover for long.
"""

from __future__ import annotations

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_RECYCLE_S = 600
MAX_OVERFLOW = 4  # beyond the one pooled connection: the run's threads and the daemon's


class PooledPostgresStorage(DagsterPostgresStorage):
    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            storage.optimize_for_webserver(statement_timeout=0, pool_recycle=POOL_RECYCLE_S,
                                           max_overflow=MAX_OVERFLOW)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value) -> PooledPostgresStorage:
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))
