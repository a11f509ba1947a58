"""Real receivers on 127.0.0.1 for the notifier tests: an SMTP server (aiosmtpd, with
STARTTLS and AUTH on a self-signed certificate made here) and an HTTP server that
records JSON posts and checks their shape per receiver kind."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def pagerduty_problems(event: Any) -> list[str]:
    """What the Events API v2 would refuse in ``event`` (its required fields)."""
    problems = []
    if not isinstance(event, dict):
        return ["event is not an object"]
    if not isinstance(event.get("routing_key"), str) or len(event["routing_key"]) != 32:
        problems.append("routing_key must be a 32-character string")
    if event.get("event_action") not in PD_ACTIONS:
        problems.append("event_action")
    if event.get("event_action") != "trigger":
        if not event.get("dedup_key"):
            problems.append("dedup_key is required to resolve")
        return problems
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return [*problems, "payload is required to trigger"]
    for name in ("summary", "source", "severity"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            problems.append(f"payload.{name} is required")
    if payload.get("severity") not in PD_SEVERITIES:
        problems.append("payload.severity")
    if len(payload.get("summary", "")) > 1024:
        problems.append("payload.summary is longer than 1024")
    return problems


def alertmanager_problems(alerts: Any) -> list[str]:
    """What Alertmanager's ``POST /api/v2/alerts`` would refuse (postableAlerts)."""
    if not isinstance(alerts, list) or not alerts:
        return ["body must be a non-empty list"]
    problems = []
    for alert in alerts:
        labels = alert.get("labels")
        if not isinstance(labels, dict) or not labels.get("alertname"):
            problems.append("labels.alertname is required")
        elif not all(isinstance(v, str) for v in labels.values()):
            problems.append("label values must be strings")
        if not all(isinstance(v, str) for v in alert.get("annotations", {}).values()):
            problems.append("annotation values must be strings")
        for key in ("startsAt", "endsAt"):
            if key in alert:
                try:
                    dt.datetime.fromisoformat(alert[key])
                except (TypeError, ValueError):
                    problems.append(f"{key} is not a date-time")
    return problems


def webhook_problems(body: Any) -> list[str]:
    """A Slack-compatible message needs ``text``; blocks, if any, need a type each."""
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        return ["text is required"]
    blocks = body.get("blocks", [])
    return [] if all(isinstance(b, dict) and b.get("type") for b in blocks) else ["blocks"]


CHECKS = {
    "/pagerduty": pagerduty_problems,
    "/api/v2/alerts": alertmanager_problems,
    "/hook": webhook_problems,
}


class HttpReceiver:
    """Records every POST; answers 400 with the problems for a malformed payload, and
    500 to the first ``fail_first`` posts (to exercise retries)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[str, Any]] = []
        self.fail_first = fail_first
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                receiver.attempts += 1
                check = CHECKS.get(self.path)
                problems = check(body) if check else [f"unknown path {self.path}"]
                if receiver.attempts <= receiver.fail_first:
                    self._answer(500, {"error": "try again"})
                elif problems:
                    self._answer(400, {"problems": problems})
                else:
                    receiver.received.append((self.path, body))
                    self._answer(202, {"status": "success"})

            def _answer(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self, path: str) -> list[Any]:
        return [body for p, body in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1. With ``tls_folder`` it requires STARTTLS and AUTH
    (``user`` / ``secret``) before it accepts mail."""

    USER, PASSWORD = "monitor", "s3cret-pass"

    def __init__(self, tls_folder: Path | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[Message] = []
        self.logins: list[str] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = message_from_bytes(envelope.original_content or envelope.content)
                message["X-Received-Tls"] = str(session.ssl is not None)
                receiver.messages.append(message)
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
            ok = isinstance(data, LoginPassword) and (
                data.login.decode(),
                data.password.decode(),
            ) == (self.USER, self.PASSWORD)
            if ok:
                receiver.logins.append(data.login.decode())
            return AuthResult(success=ok)

        options: dict[str, Any] = {}
        self.client_context: ssl.SSLContext | None = None
        if tls_folder is not None:
            cert, key = self_signed(tls_folder)
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_context.load_cert_chain(cert, key)
            self.client_context = ssl.create_default_context(cafile=str(cert))
            options = {
                "tls_context": server_context,
                "require_starttls": True,
                "authenticator": authenticator,
                "auth_require_tls": True,
                "auth_required": True,
            }
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
