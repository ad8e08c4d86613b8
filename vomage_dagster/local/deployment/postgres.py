"""A throwaway Postgres server for the local cluster: Debian's `postgresql` binaries, a
fresh data directory, loopback only, a password generated per start (SCRAM, as on RDS).

Postgres refuses to run as root; when the project runs as root (CI does), the server
and `initdb` run as the `postgres` account the Debian package creates, and the data
directory lives in a private temporary directory that account owns (a root-only state
folder would be out of its reach).
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from vomage_dagster.local import processes

USER = "dagster"
DATABASE = "dagster"
DEBIAN_BIN = Path("/usr/lib/postgresql")


class PostgresError(RuntimeError):
    pass


def bin_dir() -> Path:
    """The newest installed server's bin folder (`apt-get install postgresql`)."""
    found = sorted(DEBIAN_BIN.glob("*/bin/initdb"),
                   key=lambda p: int(re.sub(r"\D", "", p.parent.parent.name) or 0))
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresError("Postgres is not installed (apt-get install postgresql)")


def _run_as() -> dict:
    """Popen arguments that drop root to the `postgres` account; none otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresError("running as root needs the 'postgres' account (apt-get install "
                            "postgresql creates it)") from exc
    return {"user": "postgres", "group": "postgres"}


def make_root(state_dir: Path) -> Path:
    """The folder that will hold the data directory, the socket and the password file."""
    as_user = _run_as()
    if not as_user:
        root = state_dir / "postgres"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        return root
    base = Path(tempfile.gettempdir())
    if not _reachable_by_others(base):  # e.g. TMPDIR inside root's home
        base = Path("/tmp")
    root = Path(tempfile.mkdtemp(prefix="vomage-pg-", dir=base))
    shutil.chown(root, as_user["user"], as_user["group"])
    return root


def _reachable_by_others(path: Path) -> bool:
    """Every folder from / to `path` lets other accounts through (the x bit)."""
    return all(p.stat().st_mode & 0o001 for p in [path.resolve(), *path.resolve().parents])


def init(root: Path, log: Path) -> str:
    """`initdb` a new cluster in `root/data`; return the generated password of USER."""
    password = secrets.token_urlsafe(18)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    as_user = _run_as()
    if as_user:
        shutil.chown(pwfile, as_user["user"], as_user["group"])
    try:
        with log.open("ab") as out:
            done = subprocess.run(
                [str(bin_dir() / "initdb"), "-D", str(root / "data"), "-U", USER,
                 f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-locale",
                 "--no-sync"],
                cwd=root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                check=False, **as_user)
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise PostgresError(f"initdb failed (exit {done.returncode}); see {log}")
    return password


def server_command(root: Path, port: int) -> list[str]:
    """The postmaster in the foreground. Durability is traded for speed (fsync off): the
    data is thrown away at `cluster down` anyway; production uses RDS."""
    return [str(bin_dir() / "postgres"), "-D", str(root / "data"), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200"]


def start(root: Path, port: int, log: Path, env: dict[str, str], tied: bool = True) -> subprocess.Popen:
    """The server under a guard (`local/processes.py`) that stops it with SIGINT, Postgres's
    fast shutdown (SIGTERM would wait for its clients to leave)."""
    return processes.start(server_command(root, port), env=env, cwd=root, log=log, tied=tied,
                           stop_signal="INT", **_run_as())


def create_database(port: int, password: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the server takes connections, then create DATABASE (once)."""
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user=USER, password=password,
                                    dbname="postgres", connect_timeout=2)
            break
        except psycopg2.OperationalError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise PostgresError(f"Postgres did not start on port {port}: {exc}") from exc
            time.sleep(0.2)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        conn.close()


def env_vars(port: int, password: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.yaml's storage section reads."""
    return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(port), "DAGSTER_PG_USER": USER,
            "DAGSTER_PG_PASSWORD": password, "DAGSTER_PG_DB": DATABASE}
