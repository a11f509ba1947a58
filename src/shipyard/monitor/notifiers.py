"""Delivering alerts: a generic webhook, email over SMTP, PagerDuty Events API v2 and
Prometheus Alertmanager's API v2.

Each notifier turns one :class:`Notification` (an alert firing, firing again, or
resolved) into its receiver's format and sends it with a timeout. :func:`deliver`
retries with exponential back-off and returns, per channel, what happened: a receiver
that is down is recorded as a failure and never stops the monitor.

Secrets are referenced by environment variable (``url_env``, ``password_env``,
``routing_key_env``) and read only when sending, so ``shipyard.yaml`` can be committed.
"""

from __future__ import annotations

import json
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from ssl import SSLContext, create_default_context
from typing import Any, Protocol

from shipyard.errors import MonitorError

__all__ = [
    "AlertmanagerNotifier",
    "Notification",
    "Notifier",
    "PagerDutyNotifier",
    "SmtpNotifier",
    "WebhookNotifier",
    "build_notifiers",
    "deliver",
]


@dataclass(frozen=True)
class Notification:
    """One alert event as every receiver needs it."""

    rule: str
    model: str
    state: str  # firing | resolved
    severity: str
    summary: str
    dedup_key: str
    started_at: datetime
    at: datetime
    project: str = ""
    values: Mapping[str, float | None] = field(default_factory=dict)
    condition: str = ""
    link: str | None = None

    @property
    def title(self) -> str:
        mark = "RESOLVED" if self.state == "resolved" else self.severity.upper()
        return f"[{mark}] {self.rule} on {self.model}"

    def text(self) -> str:
        figures = ", ".join(f"{k} = {_figure(v)}" for k, v in self.values.items())
        lines = [self.title, self.summary, f"condition: {self.condition}"]
        if figures:
            lines.append(f"values: {figures}")
        lines.append(f"since {self.started_at.isoformat()}")
        if self.link:
            lines.append(self.link)
        return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


class Notifier(Protocol):
    name: str
    retries: int
    backoff: float

    def send(self, notification: Notification) -> None: ...


Environ = Mapping[str, str]
_PD_SEVERITIES = ("critical", "error", "warning", "info")


def _secret(environ: Environ, variable: str | None, inline: str | None, what: str) -> str:
    if variable:
        value = environ.get(variable)
        if not value:
            raise MonitorError(
                f"{what}: environment variable {variable} is not set",
                hint=f"export {variable}=… where the monitor runs",
            )
        return value
    if inline:
        return inline
    raise MonitorError(f"{what} is not configured")


def post_json(url: str, payload: Any, *, timeout: float, headers: Mapping[str, str] = {}) -> int:
    """POST JSON; raise MonitorError for a transport failure or a non-2xx answer."""
    if not url.startswith(("http://", "https://")):
        raise MonitorError(f"receiver URL {url!r} must start with http:// or https://")
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for key, value in headers.items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace")
        raise MonitorError(f"{url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MonitorError(f"cannot reach {url}: {reason}") from None


@dataclass
class WebhookNotifier:
    """Slack-compatible JSON: ``text`` for any receiver, ``blocks`` for rich ones."""

    name: str
    url: str | None = None
    url_env: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    environ: Environ = field(default_factory=dict)

    def payload(self, n: Notification) -> dict[str, Any]:
        fields = [{"type": "mrkdwn", "text": f"*{k}*\n{_figure(v)}"} for k, v in n.values.items()]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": n.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": n.summary}},
        ]
        if fields:
            blocks.append({"type": "section", "fields": fields[:10]})
        return {
            "text": n.text(),
            "blocks": blocks,
            "shipyard": {
                "state": n.state,
                "rule": n.rule,
                "model": n.model,
                "severity": n.severity,
                "dedup_key": n.dedup_key,
                "values": dict(n.values),
                "started_at": n.started_at.isoformat(),
                "at": n.at.isoformat(),
            },
        }

    def send(self, notification: Notification) -> None:
        url = _secret(self.environ, self.url_env, self.url, f"webhook '{self.name}' URL")
        post_json(url, self.payload(notification), timeout=self.timeout, headers=self.headers)


@dataclass
class PagerDutyNotifier:
    """Events API v2: ``trigger`` on firing, ``resolve`` with the same ``dedup_key``."""

    name: str
    url: str = "https://events.pagerduty.com/v2/enqueue"
    routing_key: str | None = None
    routing_key_env: str | None = None
    source: str | None = None
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    environ: Environ = field(default_factory=dict)

    def payload(self, n: Notification, routing_key: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "routing_key": routing_key,
            "event_action": "resolve" if n.state == "resolved" else "trigger",
            "dedup_key": n.dedup_key,
        }
        if n.state != "resolved":
            event["payload"] = {
                "summary": f"{n.title}: {n.summary}"[:1024],
                "source": self.source or f"shipyard/{n.project or n.model}",
                "severity": n.severity
                if n.severity in ("critical", "warning", "info")
                else "warning",
                "timestamp": n.at.isoformat(),
                "component": n.model,
                "group": n.project or None,
                "class": n.rule,
                "custom_details": {"condition": n.condition, **dict(n.values)},
            }
            if n.link:
                event["links"] = [{"href": n.link, "text": "drift report"}]
        return event

    def send(self, notification: Notification) -> None:
        key = _secret(
            self.environ, self.routing_key_env, self.routing_key, f"pagerduty '{self.name}' key"
        )
        post_json(self.url, self.payload(notification, key), timeout=self.timeout)


@dataclass
class AlertmanagerNotifier:
    """Alertmanager API v2: a list of alerts; ``endsAt`` in the past resolves one."""

    name: str
    url: str
    labels: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    environ: Environ = field(default_factory=dict)

    def payload(self, n: Notification) -> list[dict[str, Any]]:
        alert: dict[str, Any] = {
            "labels": {
                "alertname": n.rule,
                "model": n.model,
                "severity": n.severity,
                "project": n.project or n.model,
                **self.labels,
            },
            "annotations": {
                "summary": n.summary,
                "description": n.text(),
                "dedup_key": n.dedup_key,
            },
            "startsAt": n.started_at.isoformat(),
        }
        if n.state == "resolved":
            alert["endsAt"] = n.at.isoformat()
        if n.link:
            alert["generatorURL"] = n.link
        return [alert]

    def send(self, notification: Notification) -> None:
        url = self.url.rstrip("/") + "/api/v2/alerts"
        post_json(url, self.payload(notification), timeout=self.timeout)


@dataclass
class SmtpNotifier:
    """Email; STARTTLS (or implicit TLS) and AUTH when configured."""

    name: str
    host: str
    sender: str
    to: Sequence[str]
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: str | None = None
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    environ: Environ = field(default_factory=dict)
    tls_context: SSLContext | None = None  # tests pass one trusting their own cert

    def message(self, n: Notification) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = n.title
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message["X-Shipyard-Alert"] = n.dedup_key
        message["X-Shipyard-State"] = n.state
        message.set_content(n.text())
        return message

    def send(self, notification: Notification) -> None:
        context = self.tls_context or create_default_context()
        try:
            with self._connect(context) as smtp:
                if self.starttls and not self.ssl:
                    smtp.starttls(context=context)
                if self.username:
                    password = _secret(
                        self.environ, self.password_env, None, f"smtp '{self.name}' password"
                    )
                    smtp.login(self.username, password)
                smtp.send_message(self.message(notification))
        except (smtplib.SMTPException, OSError) as exc:
            raise MonitorError(f"email via {self.host}:{self.port} failed: {exc}") from None

    def _connect(self, context: SSLContext) -> smtplib.SMTP:
        if self.ssl:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)


_KINDS: dict[str, type] = {
    "webhook": WebhookNotifier,
    "smtp": SmtpNotifier,
    "pagerduty": PagerDutyNotifier,
    "alertmanager": AlertmanagerNotifier,
}


def build_notifiers(configs: Mapping[str, Any], environ: Environ) -> dict[str, Notifier]:
    """Notifiers from ``monitor.notifiers`` (validated config models)."""
    built: dict[str, Notifier] = {}
    for name, config in configs.items():
        options = config.model_dump(exclude={"type"})
        built[name] = _KINDS[config.type](name=name, environ=environ, **options)
    return built


def deliver(
    notifiers: Mapping[str, Notifier],
    names: Sequence[str],
    notification: Notification,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, Any]]:
    """Send to each named channel with retries; never raises for a receiver's fault."""
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        notifier = notifiers.get(name)
        if notifier is None:
            results[name] = {"ok": False, "attempts": 0, "error": f"no notifier named {name!r}"}
            continue
        results[name] = _with_retries(notifier, notification, sleep)
    return results


def _with_retries(
    notifier: Notifier, notification: Notification, sleep: Callable[[float], None]
) -> dict[str, Any]:
    error = ""
    for attempt in range(1, notifier.retries + 2):
        try:
            notifier.send(notification)
            return {"ok": True, "attempts": attempt}
        except MonitorError as exc:
            error = exc.message
        if attempt <= notifier.retries:
            sleep(notifier.backoff * 2 ** (attempt - 1))
    return {"ok": False, "attempts": notifier.retries + 1, "error": error}
