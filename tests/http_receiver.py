"""A real HTTP server in a thread, standing in for the far end of an outbound call (the
owner's callback endpoint, Twilio's API): it records each request and answers from a script.
The code under test makes real HTTP requests to it; nothing in Kami is patched."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    default: tuple[int, bytes] = (200, b"{}")


@contextmanager
def http_receiver(*answers: tuple[int, bytes]) -> Iterator[Receiver]:
    """Answers ``answers`` in turn, then ``receiver.default``."""
    receiver = Receiver(url="", answers=list(answers))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                receiver.requests.append(
                    Received("POST", self.path, {k: v for k, v in self.headers.items()}, body)
                )
                status, answer = receiver.answers.pop(0) if receiver.answers else receiver.default
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
