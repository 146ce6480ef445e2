"""A real HTTP server on 127.0.0.1 and a free port, answering scripted E2B responses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class SeenRequest:
    """What the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedAPI:
    """Answers per (method, path without query); unscripted paths answer 404."""

    url: str = ""
    answers: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)

    def on(self, method: str, path: str, status: int, body: Any = None, **headers: str) -> None:
        """Script an answer; a str body is sent as text, anything else as JSON."""
        if isinstance(body, str):
            content, content_type = body.encode(), "text/plain"
        else:
            content = b"" if body is None else json.dumps(body).encode()
            content_type = "application/json"
        all_headers = {"Content-Type": content_type, **headers} if content else headers
        self.answers[(method, path)] = (status, all_headers, content)


def _handler_for(api: ScriptedAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            api.requests.append(SeenRequest(self.command, self.path, dict(self.headers), body))
            status, headers, content = api.answers.get(
                (self.command, path), (404, {}, b'{"code": 404, "message": "not scripted"}')
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = do_PATCH = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def scripted_api() -> Iterator[ScriptedAPI]:
    """Serve a `ScriptedAPI` on 127.0.0.1 at a free port for the duration of the block."""
    api = ScriptedAPI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(api))
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
