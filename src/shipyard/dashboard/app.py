"""The dashboard's routes: pages, the live JSON, the buttons, login, and static files.

Every route is a plain Starlette ``Route`` under ``/ui`` listed in ``POLICY`` (the
gateway's admin policy table includes it, and its test walks the routes). Each handler
goes through ``_guarded``: the Host allow-list, the viewer, error pages that name the
problem, and the security headers (a CSP with no inline script or style).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from shipyard.dashboard import actions, auth, models_page, ops_page, runs_page
from shipyard.dashboard.html import esc, page
from shipyard.dashboard.queries import VersionCache
from shipyard.dashboard.traffic import TrafficSampler
from shipyard.errors import Conflict, NotFound, PolicyViolation, ShipyardError
from shipyard.registry.users import UserDirectory
from shipyard.store.metadata import MetadataStore

__all__ = ["POLICY", "Dashboard"]

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# A report is one self-contained file with inline CSS and images and no script; it is
# served sandboxed so that nothing in it can run, whatever it contains, and may be
# framed only by our own pages (the monitoring page embeds the newest drift report).
_REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'"
)
_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # no-referrer would make form posts send Origin: null
    "cache-control": "no-store",
}
_REPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}

POLICY: dict[tuple[str, str], str] = {
    ("GET", "/ui"): "read",
    ("GET", "/ui/models"): "read",
    ("GET", "/ui/models/{model}"): "read",
    ("GET", "/ui/models/{model}/versions/{version:int}"): "read",
    ("GET", "/ui/models/{model}/versions/{version:int}/report"): "read",
    ("GET", "/ui/runs"): "read",
    ("GET", "/ui/runs/compare"): "read",
    ("GET", "/ui/runs/{run}"): "read",
    ("GET", "/ui/deployments"): "read",
    ("GET", "/ui/monitoring"): "read",
    ("GET", "/ui/monitoring/reports/{name}"): "read",
    ("GET", "/ui/alerts"): "read",
    ("GET", "/ui/audit"): "read",
    ("GET", "/ui/api/deployments"): "read",
    **{("POST", f"/ui/api/rollouts/{{model}}/{a}"): need for a, need in actions.ACTIONS.items()},
    ("GET", "/ui/login"): "public",
    ("POST", "/ui/login"): "public",
    ("POST", "/ui/logout"): "public",
    ("GET", "/ui/static/{name}"): "public",
}

Page = Callable[[Request, "auth.Viewer | None"], Awaitable[Response]]


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status, media_type="application/json")


def _contained(root: Path, *names: str) -> Path | None:
    """``root/names…`` if each name is plain, and the file's real path (after symlinks)
    is a regular file inside ``root``'s real path; else None."""
    if not all(_REPORT_ID.match(n) for n in names):
        return None
    base = root.resolve()
    path = base.joinpath(*names).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


class Dashboard:
    """The dashboard over one metadata store.

    ``project`` (optional) gives check and drift reports and lets the buttons use the
    rollout controller; ``metrics`` (a gateway's) gives live traffic; ``on_change``
    (the gateway's refresh) is called after a button moved traffic.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        *,
        allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]", "::1"),
        project: Any = None,
        metrics: Any = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.metadata = metadata
        self.allowed_hosts = allowed_hosts
        self.project = project
        self.state_dir: Path | None = project.state_dir if project is not None else None
        self.traffic = TrafficSampler(metrics) if metrics is not None else None
        self.on_change = on_change
        self.sessions = auth.Sessions(UserDirectory(metadata))
        self.versions = VersionCache()

    @classmethod
    def for_gateway(cls, gateway: Any) -> Dashboard:
        """The dashboard a gateway serves at /ui (with the gateway's project, if any)."""
        project = getattr(gateway, "project", None)
        return cls(
            gateway.registry.metadata,
            allowed_hosts=gateway.settings.allowed_hosts,
            project=project,
            metrics=gateway.metrics,
            on_change=gateway.refresh,
        )

    # --- plumbing ---------------------------------------------------------------------
    def _guarded(self, handler: Page, *, api: bool = False, public: bool = False) -> Any:
        async def endpoint(request: Request) -> Response:
            host = (request.headers.get("host") or "").rsplit(":", 1)[0]
            if host not in self.allowed_hosts and "*" not in self.allowed_hosts:
                response: Response = _json({"error": f"unknown Host {host!r}"}, 400)
            else:
                response = await self._answer(request, handler, api=api, public=public)
            for key, value in _HEADERS.items():
                response.headers.setdefault(key, value)
            response.headers.setdefault("content-security-policy", _CSP)
            return response

        return endpoint

    async def _answer(
        self, request: Request, handler: Page, *, api: bool, public: bool
    ) -> Response:
        try:
            viewer = await run_in_threadpool(self.sessions.viewer, request)
            if viewer is None and not public:
                if api or request.method != "GET":
                    raise auth.Refused("sign in first (a token from shipyard token create)", 401)
                return RedirectResponse("/ui/login", 303)
            return await handler(request, viewer)
        except auth.Refused as exc:
            return self._error(exc.status, exc.message, api)
        except NotFound as exc:
            return self._error(404, exc.message, api)
        except Conflict as exc:
            return self._error(409, exc.message, api)
        except PolicyViolation as exc:
            return self._error(403, str(exc), api)
        except ShipyardError as exc:
            return self._error(400 if exc.exit_code == 2 else 500, exc.message, api)

    def _error(self, status: int, message: str, api: bool) -> Response:
        if api:
            return _json({"error": message}, status)
        body = page("Error", f'<p class="error">{esc(message)}</p>', active="", user=None)
        return HTMLResponse(body, status)

    async def _render(
        self,
        viewer: auth.Viewer | None,
        title: str,
        active: str,
        render: Callable[..., str],
        *args: Any,
    ) -> Response:
        body = await run_in_threadpool(render, *args)
        csrf = viewer.csrf if viewer else ""
        return HTMLResponse(page(title, body, active=active, user=viewer, csrf=csrf))

    # --- pages --------------------------------------------------------------------------
    async def home(self, request: Request, viewer: auth.Viewer | None) -> Response:
        return RedirectResponse("/ui/models", 303)

    async def models(self, request: Request, viewer: auth.Viewer | None) -> Response:
        return await self._render(
            viewer, "Models", "models", models_page.models_page, self.metadata
        )

    async def model(self, request: Request, viewer: auth.Viewer | None) -> Response:
        name = request.path_params["model"]
        return await self._render(
            viewer, name, "models", models_page.model_page, self.metadata, name, self.versions
        )

    async def version(self, request: Request, viewer: auth.Viewer | None) -> Response:
        name, number = request.path_params["model"], request.path_params["version"]
        return await self._render(
            viewer,
            f"{name} v{number}",
            "models",
            models_page.version_page,
            self.metadata,
            name,
            number,
        )

    async def runs(self, request: Request, viewer: auth.Viewer | None) -> Response:
        return await self._render(viewer, "Runs", "runs", runs_page.runs_page, self.metadata)

    async def compare(self, request: Request, viewer: auth.Viewer | None) -> Response:
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            raise auth.Refused("pick two runs to compare (?a=RUN&b=RUN)", 400)
        return await self._render(
            viewer, f"Run {a} vs {b}", "runs", runs_page.compare_page, self.metadata, a, b
        )

    async def run(self, request: Request, viewer: auth.Viewer | None) -> Response:
        run_id = request.path_params["run"]
        return await self._render(
            viewer, f"Run {run_id}", "runs", runs_page.run_page, self.metadata, run_id
        )

    async def deployments(self, request: Request, viewer: auth.Viewer | None) -> Response:
        live = self.traffic is not None
        return await self._render(
            viewer,
            "Deployments",
            "deployments",
            ops_page.deployments_page,
            self.metadata,
            viewer,
            live,
        )

    async def monitoring(self, request: Request, viewer: auth.Viewer | None) -> Response:
        reports = ops_page.monitor_reports(self.state_dir)
        return await self._render(
            viewer, "Monitoring", "monitoring", ops_page.monitoring_page, self.metadata, reports
        )

    async def alerts(self, request: Request, viewer: auth.Viewer | None) -> Response:
        return await self._render(viewer, "Alerts", "alerts", ops_page.alerts_page, self.metadata)

    async def audit(self, request: Request, viewer: auth.Viewer | None) -> Response:
        return await self._render(viewer, "Audit log", "audit", ops_page.audit_page, self.metadata)

    # --- reports: only files the store knows about, contained in the reports folder -----
    def _report_file(self, root: Path | None, *names: str) -> Response:
        path = _contained(root, *names) if root is not None else None
        if path is None:
            raise NotFound("that report is not available here", hint="run shipyard check again")
        response = Response(path.read_bytes(), media_type="text/html; charset=utf-8")
        response.headers["content-security-policy"] = _REPORT_CSP
        response.headers["x-frame-options"] = "SAMEORIGIN"
        return response

    async def check_report(self, request: Request, viewer: auth.Viewer | None) -> Response:
        from shipyard.dashboard.queries import version_detail

        name, number = request.path_params["model"], request.path_params["version"]
        detail = await run_in_threadpool(version_detail, self.metadata, name, number)
        report_id = str((detail.get("gates") or {}).get("id") or "")
        root = self.state_dir / "reports" if self.state_dir and report_id else None
        return await run_in_threadpool(self._report_file, root, report_id, "report.html")

    async def monitor_report(self, request: Request, viewer: auth.Viewer | None) -> Response:
        root = self.state_dir / "reports" / "monitor" if self.state_dir else None
        return await run_in_threadpool(self._report_file, root, request.path_params["name"])

    # --- live data and buttons -------------------------------------------------------
    def _deployments_json(self) -> dict[str, Any]:
        from shipyard.dashboard.queries import routing_tables
        from shipyard.rollout.state import RolloutStore

        rollouts = [r.to_json() for r in RolloutStore(self.metadata).live()]
        if self.traffic is not None:
            self.traffic.sample()
        # Every routed model, not only live rollouts: a page still showing a rollout
        # that just ended then shows where its traffic went.
        routing = routing_tables(self.metadata)
        traffic = self.traffic
        return {
            "rollouts": rollouts,
            "routing": routing,
            "split": {m: ops_page.split_bar(t.get("arms") or []) for m, t in routing.items()},
            "traffic": {m: traffic.series(m) for m in routing} if traffic else None,
        }

    async def deployments_json(self, request: Request, viewer: auth.Viewer | None) -> Response:
        return _json(await run_in_threadpool(self._deployments_json))

    def _action(self, action: str) -> Page:
        async def handler(request: Request, viewer: auth.Viewer | None) -> Response:
            who = auth.require(request, viewer, actions.ACTIONS[action], self.allowed_hosts)
            model = request.path_params["model"]
            result = await run_in_threadpool(
                lambda: actions.perform(action, model, actor=who.name, project=self.project)
            )
            if self.on_change is not None:
                await run_in_threadpool(self.on_change)
            return _json({"ok": True, **result})

        return handler

    # --- login ------------------------------------------------------------------------
    async def login_form(
        self, request: Request, viewer: auth.Viewer | None, message: str = ""
    ) -> Response:
        note = f'<p class="error">{esc(message)}</p>' if message else ""
        body = (
            f"{note}<form method=post action=/ui/login class=login>"
            "<label>API token <input type=password name=token autocomplete=off required></label>"
            "<button type=submit>sign in</button></form>"
            '<p class="muted">create one with: shipyard token create</p>'
        )
        return HTMLResponse(page("Sign in", body, active="", user=None), 401 if message else 200)

    async def login(self, request: Request, viewer: auth.Viewer | None) -> Response:
        auth.same_origin(request, self.allowed_hosts)
        body = await request.body()
        if len(body) > 4096:
            raise auth.Refused("the sign-in form is too large", 413)
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        token = (fields.get("token") or [""])[0]
        made = await run_in_threadpool(self.sessions.login, token) if token else None
        if made is None:
            return await self.login_form(request, None, "that token is unknown, expired or revoked")
        response = RedirectResponse("/ui/models", 303)
        response.set_cookie(
            auth.COOKIE,
            made[0],
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/ui",
        )
        return response

    async def logout(self, request: Request, viewer: auth.Viewer | None) -> Response:
        auth.same_origin(request, self.allowed_hosts)
        self.sessions.logout(request.cookies.get(auth.COOKIE))
        response = RedirectResponse("/ui/login", 303)
        response.delete_cookie(auth.COOKIE, path="/ui")
        return response

    async def static(self, request: Request, viewer: auth.Viewer | None) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            raise NotFound(f"no static file {name!r}")
        body = (Path(__file__).with_name("static") / name).read_bytes()
        response = Response(body, media_type=_STATIC[name])
        response.headers["cache-control"] = "no-cache"
        return response

    # --- routes -------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        g = self._guarded
        table: list[tuple[str, Any, list[str]]] = [
            ("/ui", g(self.home), ["GET"]),
            ("/ui/models", g(self.models), ["GET"]),
            ("/ui/models/{model}", g(self.model), ["GET"]),
            ("/ui/models/{model}/versions/{version:int}", g(self.version), ["GET"]),
            ("/ui/models/{model}/versions/{version:int}/report", g(self.check_report), ["GET"]),
            ("/ui/runs", g(self.runs), ["GET"]),
            ("/ui/runs/compare", g(self.compare), ["GET"]),
            ("/ui/runs/{run}", g(self.run), ["GET"]),
            ("/ui/deployments", g(self.deployments), ["GET"]),
            ("/ui/monitoring", g(self.monitoring), ["GET"]),
            ("/ui/monitoring/reports/{name}", g(self.monitor_report), ["GET"]),
            ("/ui/alerts", g(self.alerts), ["GET"]),
            ("/ui/audit", g(self.audit), ["GET"]),
            ("/ui/api/deployments", g(self.deployments_json, api=True), ["GET"]),
            *[
                (f"/ui/api/rollouts/{{model}}/{a}", g(self._action(a), api=True), ["POST"])
                for a in actions.ACTIONS
            ],
            ("/ui/login", g(self.login_form, public=True), ["GET"]),
            ("/ui/login", g(self.login, public=True), ["POST"]),
            ("/ui/logout", g(self.logout, public=True), ["POST"]),
            ("/ui/static/{name}", g(self.static, public=True), ["GET"]),
        ]
        return [Route(path, endpoint, methods=methods) for path, endpoint, methods in table]
