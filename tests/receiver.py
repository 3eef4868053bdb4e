"""A real webhook receiver on 127.0.0.1 that verifies Standard Webhooks signatures."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


class Receiver:
    """Answers each request with the next scripted status (then 200); records everything."""

    def __init__(
        self, secrets: list[str] | None = None, script: list[tuple[int, dict]] | None = None
    ) -> None:
        self.secrets = secrets or []
        self.script = list(script or [])
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = any(_verifies(secret, body, headers) for secret in receiver.secrets)
                with receiver.lock:
                    status, extra = receiver.script.pop(0) if receiver.script else (200, {})
                    receiver.requests.append(
                        {
                            "headers": headers,
                            "body": json.loads(body),
                            "verified": verified,
                            "status": status,
                            "at": time.time(),
                        }
                    )
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/complete"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _verifies(secret: str, body: bytes, headers: dict) -> bool:
    try:
        Webhook(secret).verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


def deliver_to(receiver: Receiver, jobs, rounds: int = 20) -> None:
    """Send the outbox's due callbacks (loopback allowed) until ``receiver`` has one: at most
    ``rounds`` rounds, 50 ms apart."""
    from char_pipeline.webhooks import WebhookSender, parse_allowlist

    sender = WebhookSender(jobs, allow=parse_allowlist("127.0.0.1"), schedule=(0,))
    try:
        for _ in range(rounds):
            sender.deliver_due()
            if receiver.requests:
                return
            time.sleep(0.05)
    finally:
        sender.close()
