"""Dagster's tables, made once however many services start at once.

Every service that opens the instance creates the tables an empty database lacks. On a
first deploy ECS starts them together, and two creating the same table collide
(`relation "instance_info" already exists`, or a duplicate key in the tables that record
the schema's version): the loser would exit and wait for ECS to start it again. Each
service therefore opens the instance once before it starts, and on a collision waits a
moment and opens it again, finding the tables the winner made.
"""

from __future__ import annotations

import random
import time

COLLISIONS = ("already exists", "duplicate key value")


def open_instance(attempts: int = 6, pause_s: float = 1.0) -> int:
    """Open the instance of `DAGSTER_HOME` (creating its tables if the database is empty);
    the attempts it took. Raises what is not a collision, or the last one."""
    import sqlalchemy.exc
    from dagster import DagsterInstance

    for attempt in range(1, attempts + 1):
        try:
            with DagsterInstance.get() as instance:
                instance.get_runs_count()
            return attempt
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            if attempt == attempts or not any(c in str(exc) for c in COLLISIONS):
                raise
            time.sleep(pause_s * (1 + random.random()))
    raise AssertionError("not reached")
