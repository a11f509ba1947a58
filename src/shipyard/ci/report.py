"""``shipyard ci report``: a check report as a pull-request comment, and posting it.

The comment is the check's own Markdown (``checks.markdown``) behind a hidden marker,
cut to the provider's length limit with a pointer to the full report. Posting finds
the comment or note Shipyard left before (by the marker) and edits it, so a pull
request carries one report that follows its pushes instead of one per push.

HTTP goes through ``urllib`` with a timeout; the provider's answers become ShipyardErrors
that say what to fix (exit 2 for a rejected token or an unknown pull request, exit 3
when the API cannot be reached), and the token never appears in a message.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.errors import ShipyardError, UsageError

__all__ = [
    "LIMITS",
    "MARKER",
    "Comment",
    "Posted",
    "Target",
    "load_report",
    "post_comment",
    "render_comment",
    "resolve_target",
]

MARKER = "<!-- shipyard-report -->"
# Longest comment each provider stores (characters); None: a file, no limit.
LIMITS: dict[str, int | None] = {
    "github": 65536,
    "gitlab": 1_000_000,
    "azure": 150_000,
    "jenkins": None,
    "aws": None,
}
POSTING = ("github", "gitlab", "azure")
_LINK = re.compile(r"^https?://[^\s()<>\[\]]+$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_AZURE_REPO = re.compile(r"^[A-Za-z0-9_.-][A-Za-z0-9_. -]{0,63}$")
_PAGE = 100


@dataclass(frozen=True)
class Comment:
    provider: str
    body: str
    truncated: bool = False


@dataclass(frozen=True)
class Target:
    """Where a comment goes: the API, the credentials and the pull request."""

    provider: str
    api_url: str
    token: str
    number: int
    repository: str  # owner/name (GitHub), project id or path (GitLab), repo (Azure)
    token_header: str = "Authorization"


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    url: str


def load_report(path: str | Path) -> Any:
    """The CheckReport in ``path``; UsageError when it is missing or not one."""
    from shipyard.checks.report import CheckReport

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"no report at {str(path)!r}", hint="run `shipyard check --output DIR` first"
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {str(path)!r} as JSON: {exc}") from None
    return CheckReport.from_dict(data, source=str(path))


def render_comment(report: Any, provider: str, *, link: str | None = None) -> Comment:
    """The comment body for ``provider``, within its length limit."""
    from shipyard.checks.markdown import render_markdown

    if provider not in LIMITS:
        raise UsageError(f"unknown CI provider {provider!r}; choose one of: {', '.join(LIMITS)}")
    if link is not None and not _LINK.match(link):
        raise UsageError(f"--link {link!r} must be an http(s) URL without spaces or brackets")
    body = render_markdown(report)
    if link:
        body += f"\n[Full report and logs]({link})\n"
    if provider in POSTING:
        body = f"{MARKER}\n{body}"
    return _truncate(provider, body, link)


def _truncate(provider: str, body: str, link: str | None) -> Comment:
    limit = LIMITS[provider]
    if limit is None or len(body) <= limit:
        return Comment(provider, body)
    where = (
        f"[the full report]({link})" if link else "report.md and report.html in the job's artifacts"
    )
    note = f"\n\n---\n_Report cut at {limit:,} characters: see {where}._\n"
    head = body[: limit - len(note)]
    head = head[: head.rfind("\n")] if "\n" in head else head
    return Comment(provider, head + note, truncated=True)


def _number(value: str | int | None, what: str) -> int:
    text = str(value or "").strip()
    if not text.isdigit() or int(text) <= 0:
        raise UsageError(f"{what} {value!r} must be a positive number")
    return int(text)


def resolve_target(
    provider: str,
    environ: Mapping[str, str],
    *,
    api_url: str | None = None,
    token_env: str | None = None,
    number: str | int | None = None,
    repository: str | None = None,
) -> Target:
    """Fill what the command line left out from the CI system's own variables."""
    resolvers: dict[str, Callable[..., Target]] = {
        "github": _github_target,
        "gitlab": _gitlab_target,
        "azure": _azure_target,
    }
    if provider not in resolvers:
        raise UsageError(
            f"--provider {provider} has no comment API: write the comment with --output FILE "
            "and keep it as a build artifact",
        )
    return resolvers[provider](environ, api_url, token_env, number, repository)


def _token(environ: Mapping[str, str], name: str) -> str:
    token = environ.get(name, "")
    if not token:
        raise UsageError(
            f"no token in ${name}",
            hint=f"put a token that may comment on pull requests in ${name}, or name "
            "another variable with --token-env",
        )
    return token


def _api(url: str | None, option: str = "--api-url") -> str:
    if not url or not re.match(r"^https?://[^\s]+$", url):
        raise UsageError(f"{option} {url!r} must be an http(s) URL")
    return url.rstrip("/")


def _github_target(
    environ: Mapping[str, str],
    api_url: str | None,
    token_env: str | None,
    number: str | int | None,
    repository: str | None,
) -> Target:
    repo = repository or environ.get("GITHUB_REPOSITORY", "")
    if not _REPO.match(repo):
        raise UsageError(f"--repo {repo!r} must look like owner/name")
    if number is None:
        found = re.match(r"^refs/pull/(\d+)/", environ.get("GITHUB_REF", ""))
        number = found.group(1) if found else None
    url = api_url or environ.get("GITHUB_API_URL") or "https://api.github.com"
    token = _token(environ, token_env or "GITHUB_TOKEN")
    return Target("github", _api(url), token, _number(number, "--pr"), repo)


def _gitlab_target(
    environ: Mapping[str, str],
    api_url: str | None,
    token_env: str | None,
    number: str | int | None,
    repository: str | None,
) -> Target:
    name = token_env or ("GITLAB_TOKEN" if environ.get("GITLAB_TOKEN") else "CI_JOB_TOKEN")
    header = "JOB-TOKEN" if name == "CI_JOB_TOKEN" else "PRIVATE-TOKEN"
    project = repository or environ.get("CI_PROJECT_ID", "")
    if not project:
        raise UsageError("--project-id is needed (GitLab sets CI_PROJECT_ID in a job)")
    number = number if number is not None else environ.get("CI_MERGE_REQUEST_IID")
    url = _api(api_url or environ.get("CI_API_V4_URL"))
    return Target("gitlab", url, _token(environ, name), _number(number, "--mr"), project, header)


def _azure_target(
    environ: Mapping[str, str],
    api_url: str | None,
    token_env: str | None,
    number: str | int | None,
    repository: str | None,
) -> Target:
    if api_url is None and environ.get("SYSTEM_COLLECTIONURI"):
        project = quote(environ.get("SYSTEM_TEAMPROJECT", ""), safe="")
        api_url = environ["SYSTEM_COLLECTIONURI"].rstrip("/") + "/" + project
    repo = (
        repository or environ.get("BUILD_REPOSITORY_ID") or environ.get("BUILD_REPOSITORY_NAME", "")
    )
    if not _AZURE_REPO.match(repo):
        raise UsageError(f"--repo {repo!r} must name the Azure Repos repository (or its id)")
    number = number if number is not None else environ.get("SYSTEM_PULLREQUEST_PULLREQUESTID")
    token = _token(environ, token_env or "SYSTEM_ACCESSTOKEN")
    return Target("azure", _api(api_url), token, _number(number, "--pr"), repo)


# -- posting -----------------------------------------------------------------------------


def post_comment(comment: Comment, target: Target, *, timeout: float = 15.0) -> Posted:
    """Create the comment on the pull request, or update the one posted before."""
    posters = {"github": _post_github, "gitlab": _post_gitlab, "azure": _post_azure}
    return posters[target.provider](comment.body, target, timeout)


def _post_github(body: str, target: Target, timeout: float) -> Posted:
    base = f"{target.api_url}/repos/{target.repository}/issues"
    http = _Http(target, timeout, {"Accept": "application/vnd.github+json"})
    for page in range(1, 51):
        found = http.call("GET", f"{base}/{target.number}/comments?per_page={_PAGE}&page={page}")
        for item in found if isinstance(found, list) else []:
            if MARKER in str(item.get("body", "")):
                answer = http.call("PATCH", f"{base}/comments/{item['id']}", {"body": body})
                return Posted("updated", str(answer.get("html_url", "")))
        if not isinstance(found, list) or len(found) < _PAGE:
            break
    answer = http.call("POST", f"{base}/{target.number}/comments", {"body": body})
    return Posted("created", str(answer.get("html_url", "")))


def _post_gitlab(body: str, target: Target, timeout: float) -> Posted:
    project = quote(target.repository, safe="")
    base = f"{target.api_url}/projects/{project}/merge_requests/{target.number}/notes"
    http = _Http(target, timeout)
    for page in range(1, 51):
        found = http.call("GET", f"{base}?per_page={_PAGE}&page={page}")
        for note in found if isinstance(found, list) else []:
            if MARKER in str(note.get("body", "")):
                http.call("PUT", f"{base}/{note['id']}", {"body": body})
                return Posted("updated", f"{base}/{note['id']}")
        if not isinstance(found, list) or len(found) < _PAGE:
            break
    answer = http.call("POST", base, {"body": body})
    return Posted("created", f"{base}/{answer.get('id', '')}")


def _post_azure(body: str, target: Target, timeout: float) -> Posted:
    repo = quote(target.repository, safe="")
    base = f"{target.api_url}/_apis/git/repositories/{repo}/pullRequests/{target.number}/threads"
    version = "api-version=7.1"
    http = _Http(target, timeout)
    threads = http.call("GET", f"{base}?{version}")
    for thread in threads.get("value", []) if isinstance(threads, dict) else []:
        for item in thread.get("comments") or []:
            if MARKER in str(item.get("content", "")):
                url = f"{base}/{thread['id']}/comments/{item['id']}?{version}"
                http.call("PATCH", url, {"content": body})
                return Posted("updated", url)
    thread_body = {
        "comments": [{"parentCommentId": 0, "content": body, "commentType": 1}],
        "status": 1,
    }
    answer = http.call("POST", f"{base}?{version}", thread_body)
    return Posted("created", f"{base}/{answer.get('id', '')}")


class _Http:
    """JSON over urllib for one target; provider errors become ShipyardErrors."""

    def __init__(self, target: Target, timeout: float, headers: dict[str, str] | None = None):
        self.target = target
        self.timeout = timeout
        self.headers = {"User-Agent": "shipyard-ci-report", **(headers or {})}
        if target.token_header == "Authorization":
            self.headers["Authorization"] = f"Bearer {target.token}"
        else:
            self.headers[target.token_header] = target.token

    def call(self, method: str, url: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            raise _http_error(self.target, method, url, exc) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ShipyardError(
                f"cannot reach {self.target.provider} at {self.target.api_url}: {reason}",
                hint="check --api-url and that the CI job can reach it",
            ) from None
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError:
            raise ShipyardError(f"{method} {url} answered something that is not JSON") from None


def _http_error(target: Target, method: str, url: str, exc: urllib.error.HTTPError) -> Exception:
    try:
        detail = exc.read().decode("utf-8", "replace")[:300]
    except OSError:
        detail = ""
    where = f"{method} {url} answered HTTP {exc.code}"
    if exc.code in (401, 403):
        return UsageError(
            f"{where}: the token was refused",
            hint=f"the token needs permission to comment on pull requests ({target.provider});"
            " pass the right variable with --token-env",
        )
    if exc.code == 404:
        return UsageError(
            f"{where}: no such repository or pull request",
            hint="check --repo/--project-id, --pr/--mr and --api-url",
        )
    return ShipyardError(f"{where}: {detail.strip() or exc.reason}")
