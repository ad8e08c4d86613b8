"""The local stack's trace collector: an OTLP/HTTP receiver, as X-Ray's OTLP endpoint is on AWS.

It takes what every process exports (`POST /v1/traces`, protobuf, gzip or not), keeps
the spans in SQLite in the stack's state folder, and answers `GET /v1/traces/<trace id>`
(32 hex digits) with them as JSON, for `vomage trace` and the tests.

    python -m vomage_dagster.local.traces.receiver --port N --db FILE
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SCHEMA = """CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT, span_id TEXT, parent_id TEXT, name TEXT, service TEXT,
    start_ns INTEGER, end_ns INTEGER, status TEXT, attributes TEXT,
    PRIMARY KEY (trace_id, span_id, start_ns))"""
STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
MAX_BODY = 16 * 1024 * 1024


def _value(any_value) -> object:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind in ("string_value", "bool_value", "int_value", "double_value") else str(
        getattr(any_value, kind, ""))


def decode(body: bytes) -> list[tuple]:
    """Rows of an ExportTraceServiceRequest."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    rows = []
    for resource_spans in request.resource_spans:
        service = next((str(_value(a.value)) for a in resource_spans.resource.attributes
                        if a.key == "service.name"), "")
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                rows.append((s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex() or None, s.name, service,
                             s.start_time_unix_nano, s.end_time_unix_nano, STATUS.get(s.status.code, "UNSET"),
                             json.dumps({a.key: _value(a.value) for a in s.attributes})))
    return rows


class Store:
    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute(SCHEMA)
        self.lock = threading.Lock()

    def add(self, rows: list[tuple]) -> None:
        with self.lock, self.db:
            self.db.executemany("INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def trace(self, trace_id: str) -> list[dict]:
        with self.lock:
            found = self.db.execute("SELECT span_id, parent_id, name, service, start_ns, end_ns, status, attributes "
                                    "FROM spans WHERE trace_id = ? ORDER BY start_ns", (trace_id,)).fetchall()
        return [{"span_id": r[0], "parent_id": r[1], "name": r[2], "service": r[3], "start_ns": r[4],
                 "end_ns": r[5], "status": r[6], "attributes": json.loads(r[7])} for r in found]


def handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            if self.path.split("?")[0] != "/v1/traces":
                return self._send(404, b"{}", "application/json")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(413, b"{}", "application/json")
            body = self.rfile.read(length)
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            try:
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                store.add(decode(body))
            except Exception as exc:  # noqa: BLE001 - a bad export is the sender's problem, answered 400
                return self._send(400, json.dumps({"error": type(exc).__name__}).encode(), "application/json")
            self._send(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path == "/health":
                return self._send(200, b'{"ok": true}', "application/json")
            if path.startswith("/v1/traces/"):
                trace_id = path.rsplit("/", 1)[-1].lower()
                return self._send(200, json.dumps({"trace_id": trace_id, "spans": store.trace(trace_id)}).encode(),
                                  "application/json")
            self._send(404, b"{}", "application/json")

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(Store(Path(args.db))))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
