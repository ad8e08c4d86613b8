"""The Redis cache and the Celery broker over TLS with an AUTH token, as on ElastiCache:
against a real redis-server started here with TLS and `requirepass`."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time

import pytest
import yaml

from vomage_dagster.resources.cache import Cache
from vomage_dagster.runtime.execution import celery_config
from vomage_dagster.settings import load_settings

TOKEN = "tls-test-token-0123456789"


def _certificates(folder):
    """A CA and a server certificate for 127.0.0.1, made with `cryptography`."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("vomage test CA")).issuer_name(name("vomage test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {n: folder / f"{n}.pem" for n in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    folder = tmp_path_factory.mktemp("redis-tls")
    certs = _certificates(folder)
    port = _free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", "0", "--tls-port", str(port),
                             "--tls-cert-file", str(certs["cert"]), "--tls-key-file", str(certs["key"]),
                             "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "no",
                             "--requirepass", TOKEN, "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield {"url": f"rediss://127.0.0.1:{port}/0", "ca": str(certs["ca"]), "port": port}
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_cache_talks_tls_with_the_token_and_verifies_the_server(tls_redis):
    cache = Cache(redis_url=tls_redis["url"], password=TOKEN, ca_file=tls_redis["ca"])
    assert cache.set_json("status", "rec-tls", {"stage": "uploaded"})
    assert cache.get_json("status", "rec-tls") == {"stage": "uploaded"}
    # No token, or a server the client cannot verify: refused (the cache degrades, as designed).
    assert Cache(redis_url=tls_redis["url"], ca_file=tls_redis["ca"]).set_json("status", "x", 1) is False
    assert Cache(redis_url=tls_redis["url"], password=TOKEN).set_json("status", "x", 1) is False
    # Plain TCP to the TLS port is no way in either.
    assert Cache(redis_url=f"redis://127.0.0.1:{tls_redis['port']}/0", password=TOKEN,
                 socket_timeout_s=1).set_json("status", "x", 1) is False


def test_celery_connects_to_a_rediss_broker_and_backend(tls_redis):
    from celery import Celery

    settings = load_settings({"REDIS_URL": tls_redis["url"], "REDIS_PASSWORD": TOKEN,
                              "VOMAGE_REDIS_CA_FILE": tls_redis["ca"]})
    config = celery_config(settings)
    assert config["broker"].startswith("rediss://:") and TOKEN not in repr(settings)
    # The workers read the same dict from YAML.
    assert yaml.safe_load(yaml.safe_dump(config)) == config
    app = Celery("vomage-tls-test", broker=config["broker"], backend=config["backend"])
    app.conf.update(config["config_source"])
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=2)
        queue = conn.SimpleQueue("vomage-tls-test")
        queue.put({"hello": "tls"})
        assert queue.get(timeout=5).payload == {"hello": "tls"}
        queue.close()
    assert app.backend.client.ping() is True
