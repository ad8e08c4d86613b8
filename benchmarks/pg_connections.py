"""What a Postgres connection costs, against a query on an open one.

dagster-postgres opens a new connection for every storage call (SQLAlchemy NullPool), so
on the cluster (`vomage cluster up`) each event a step writes pays a connection: a TCP
handshake, SCRAM authentication (PBKDF2 on both sides, as on RDS) and a forked backend.
This measures that cost on the cluster's own Postgres setup (local/deployment/postgres.py).

    .venv/bin/python -m benchmarks.pg_connections [--n 300]

Prints a table (median and p95 wall time, client and server CPU per operation) and
writes benchmarks/results/pg_connections.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _tree_cpu_s(pid: int) -> float:
    """CPU of a process and the children it has reaped (the postmaster reaps backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(label: str, n: int, op, server_pid: int) -> dict:
    walls = []
    client0, server0 = _own_cpu_s(), _tree_cpu_s(server_pid)
    for _ in range(n):
        t = time.perf_counter()
        op()
        walls.append((time.perf_counter() - t) * 1000)
    time.sleep(0.5)  # let the last backends exit and be reaped
    walls.sort()
    return {"what": label, "n": n, "wall_p50_ms": round(statistics.median(walls), 3),
            "wall_p95_ms": round(walls[int(0.95 * (n - 1))], 3),
            "client_cpu_ms": round((_own_cpu_s() - client0) / n * 1000, 3),
            "server_cpu_ms": round((_tree_cpu_s(server_pid) - server0) / n * 1000, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--out", default=str(RESULTS / "pg_connections.json"))
    args = parser.parse_args()

    import psycopg2

    from vomage_dagster.local import processes
    from vomage_dagster.local.aws.stack import free_port
    from vomage_dagster.local.deployment import postgres

    state = Path(tempfile.mkdtemp(prefix="vomage-pgbench-"))
    root = postgres.make_root(state)
    log = state / "postgres.log"
    password = postgres.init(root, log)
    port = free_port()
    server = postgres.start(root, port, log, dict(os.environ))
    try:
        postgres.create_database(port, password, server)
        dsn = {"host": "127.0.0.1", "port": port, "user": postgres.USER, "password": password,
               "dbname": postgres.DATABASE}

        def connect_query_close() -> None:
            conn = psycopg2.connect(**dsn)
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.close()

        open_conn = psycopg2.connect(**dsn)

        def query_on_open_connection() -> None:
            with open_conn.cursor() as cur:
                cur.execute("SELECT 1")

        rows = [measure("connect + query + close (what each Dagster storage call does)", args.n,
                        connect_query_close, server.pid),
                measure("query on an open connection (a pool)", args.n,
                        query_on_open_connection, server.pid)]
        open_conn.close()
    finally:
        processes.stop(server.pid)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    width = max(len(r["what"]) for r in rows)
    print(f"{'operation':<{width}}  wall p50  wall p95  client CPU  server CPU (ms)")
    for r in rows:
        print(f"{r['what']:<{width}}  {r['wall_p50_ms']:8.3f}  {r['wall_p95_ms']:8.3f}  "
              f"{r['client_cpu_ms']:10.3f}  {r['server_cpu_ms']:10.3f}")
    print(f"ratio, connection per call / open connection (wall p50): "
          f"{rows[0]['wall_p50_ms'] / rows[1]['wall_p50_ms']:.0f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "cpus": os.cpu_count(),
                                          "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                         indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
