"""`shipyard ci report`: the check report as a pull-request comment, posted to a local
HTTP receiver that plays GitHub, GitLab and Azure DevOps and checks every request."""

from __future__ import annotations

import json
import re
import socket
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from shipyard.checks.base import GateResult
from shipyard.checks.report import CheckReport
from shipyard.ci.report import LIMITS, MARKER, render_comment
from shipyard.cli.main import main

TOKEN = "tok-3f9a"


def make_report(summary: str = "f1 0.91 >= 0.8", gates: int = 2) -> CheckReport:
    results = [
        GateResult(f"gate{i}", "passed" if i else "failed", summary, advice="retrain")
        for i in range(gates)
    ]
    return CheckReport(
        id="r1", created=datetime(2026, 1, 1, tzinfo=UTC), model="model", gates=results
    )


@pytest.fixture
def report_file(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(make_report().to_json())
    return path


class Receiver:
    """A provider API on 127.0.0.1: records each request (header names lower-cased,
    as HTTP treats them) and keeps comments."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_with: int | None = None
        self.github: list[dict] = []  # comments on PR 7 of acme/credit
        self.gitlab: list[dict] = []  # notes on MR 5 of project 42
        self.azure: list[dict] = []  # threads on PR 9 of repo credit
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                entry = {
                    "method": self.command,
                    "path": urlsplit(self.path).path,
                    "query": parse_qs(urlsplit(self.path).query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(raw) if raw else None,
                }
                receiver.requests.append(entry)
                status, answer = receiver.route(entry)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _serve

        return Handler

    def route(self, request: dict) -> tuple[int, object]:
        if self.fail_with:
            return self.fail_with, {"message": "nope"}
        path, method = request["path"], request["method"]
        for pattern, handler in (
            (r"/repos/acme/credit/issues/(7)/comments", self._github_list),
            (r"/repos/acme/credit/issues/comments/(\d+)", self._github_edit),
            (r"/api/v4/projects/42/merge_requests/5/notes(?:/(\d+))?", self._gitlab),
            (r"/org/proj/_apis/git/repositories/credit/pullRequests/9/threads(.*)", self._azure),
        ):
            found = re.fullmatch(pattern, path)
            if found:
                return handler(method, request, found.group(1))
        return 404, {"message": "Not Found"}

    def _page(self, items: list, request: dict) -> list:
        per_page = int(request["query"].get("per_page", ["30"])[0])
        page = int(request["query"].get("page", ["1"])[0])
        return items[(page - 1) * per_page : page * per_page]

    def _github_list(self, method, request, _):
        if method == "GET":
            return 200, self._page(self.github, request)
        comment = {"id": 1000 + len(self.github), "body": request["body"]["body"]}
        comment["html_url"] = f"https://example.test/c/{comment['id']}"
        self.github.append(comment)
        return 201, comment

    def _github_edit(self, method, request, comment_id):
        comment = next(c for c in self.github if c["id"] == int(comment_id))
        comment["body"] = request["body"]["body"]
        return 200, comment

    def _gitlab(self, method, request, note_id):
        if method == "GET":
            return 200, self._page(self.gitlab, request)
        if method == "PUT":
            note = next(n for n in self.gitlab if n["id"] == int(note_id))
            note["body"] = request["body"]["body"]
            return 200, note
        note = {"id": 500 + len(self.gitlab), "body": request["body"]["body"]}
        self.gitlab.append(note)
        return 201, note

    def _azure(self, method, request, rest):
        if method == "GET":
            return 200, {"value": self.azure, "count": len(self.azure)}
        if method == "PATCH":
            thread_id, comment_id = map(int, re.findall(r"\d+", rest))
            thread = next(t for t in self.azure if t["id"] == thread_id)
            comment = next(c for c in thread["comments"] if c["id"] == comment_id)
            comment["content"] = request["body"]["content"]
            return 200, comment
        comments = [dict(c, id=1) for c in request["body"]["comments"]]
        thread = {"id": 70 + len(self.azure), "comments": comments}
        self.azure.append(thread)
        return 200, thread


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def github_post(receiver, report_file, *extra):
    return main(
        [
            "ci",
            "report",
            str(report_file),
            "--provider",
            "github",
            "--post",
            "--api-url",
            receiver.url,
            "--repo",
            "acme/credit",
            "--pr",
            "7",
            *extra,
        ]
    )


def test_github_creates_then_updates_one_comment(receiver, report_file, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    receiver.github = [{"id": i, "body": f"someone else {i}"} for i in range(150)]
    assert github_post(receiver, report_file) == 0
    created = receiver.requests[-1]
    assert created["method"] == "POST"
    assert created["path"] == "/repos/acme/credit/issues/7/comments"
    assert created["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert created["headers"]["accept"] == "application/vnd.github+json"
    assert created["headers"]["content-type"] == "application/json"
    assert set(created["body"]) == {"body"}
    assert created["body"]["body"].startswith(MARKER)
    assert "Shipyard check ❌ failed" in created["body"]["body"]
    # the list was read page by page, 100 at a time
    pages = [r["query"]["page"] for r in receiver.requests if r["method"] == "GET"]
    assert pages == [["1"], ["2"]]

    report_file.write_text(make_report(summary="f1 0.95 after retraining").to_json())
    receiver.requests.clear()
    assert github_post(receiver, report_file) == 0
    methods = [(r["method"], r["path"]) for r in receiver.requests]
    assert methods[-1] == ("PATCH", "/repos/acme/credit/issues/comments/1150")
    assert [r["method"] for r in receiver.requests].count("POST") == 0
    ours = [c for c in receiver.github if MARKER in c["body"]]
    assert len(ours) == 1 and "after retraining" in ours[0]["body"]
    assert "updated the github comment" in capsys.readouterr().err


def test_github_reads_the_ci_variables(receiver, report_file, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", receiver.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/credit")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/7/merge")
    argv = ["ci", "report", str(report_file), "-p", "github", "--post"]
    assert main(argv) == 0
    assert receiver.requests[-1]["path"] == "/repos/acme/credit/issues/7/comments"


def test_gitlab_note_with_private_token_then_update(receiver, report_file, monkeypatch):
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    monkeypatch.setenv("CI_API_V4_URL", f"{receiver.url}/api/v4")
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    monkeypatch.setenv("CI_MERGE_REQUEST_IID", "5")
    argv = ["ci", "report", str(report_file), "--provider", "gitlab", "--post"]
    assert main(argv) == 0
    created = receiver.requests[-1]
    assert (created["method"], created["path"]) == (
        "POST",
        "/api/v4/projects/42/merge_requests/5/notes",
    )
    assert created["headers"]["private-token"] == TOKEN
    assert "authorization" not in created["headers"]
    assert created["body"]["body"].startswith(MARKER)
    assert main(argv) == 0
    assert receiver.requests[-1]["method"] == "PUT"
    assert receiver.requests[-1]["path"].endswith("/notes/500")
    assert len(receiver.gitlab) == 1


def test_gitlab_job_token_header(receiver, report_file, monkeypatch):
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    monkeypatch.setenv("CI_JOB_TOKEN", TOKEN)
    argv = ["ci", "report", str(report_file), "-p", "gitlab", "--post"]
    argv += ["--api-url", f"{receiver.url}/api/v4", "--project-id", "42", "--mr", "5"]
    assert main(argv) == 0
    assert receiver.requests[-1]["headers"]["job-token"] == TOKEN


def test_azure_thread_then_update(receiver, report_file, monkeypatch):
    monkeypatch.setenv("SYSTEM_ACCESSTOKEN", TOKEN)
    monkeypatch.setenv("SYSTEM_COLLECTIONURI", f"{receiver.url}/org/")
    monkeypatch.setenv("SYSTEM_TEAMPROJECT", "proj")
    monkeypatch.setenv("BUILD_REPOSITORY_NAME", "credit")
    argv = ["ci", "report", str(report_file), "-p", "azure", "--post", "--pr", "9"]
    assert main(argv) == 0
    created = receiver.requests[-1]
    assert created["method"] == "POST"
    assert created["path"] == "/org/proj/_apis/git/repositories/credit/pullRequests/9/threads"
    assert created["query"]["api-version"] == ["7.1"]
    assert created["headers"]["authorization"] == f"Bearer {TOKEN}"
    comment = created["body"]["comments"][0]
    assert comment["parentCommentId"] == 0 and comment["commentType"] == 1
    assert comment["content"].startswith(MARKER)
    assert main(argv) == 0
    assert receiver.requests[-1]["method"] == "PATCH"
    assert receiver.requests[-1]["path"].endswith("/threads/70/comments/1")
    assert len(receiver.azure) == 1


@pytest.mark.parametrize(("status", "code", "words"), [(401, 2, "refused"), (404, 2, "no such")])
def test_http_errors_are_clear_messages(
    receiver, report_file, monkeypatch, capsys, status, code, words
):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    receiver.fail_with = status
    assert github_post(receiver, report_file) == code
    err = capsys.readouterr().err
    assert f"HTTP {status}" in err and words in err
    assert "Traceback" not in err and TOKEN not in err


def test_a_server_error_exits_3(receiver, report_file, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    receiver.fail_with = 502
    assert github_post(receiver, report_file) == 3
    assert "HTTP 502" in capsys.readouterr().err


def test_unreachable_api_exits_3(report_file, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nobody listens
    argv = ["ci", "report", str(report_file), "-p", "github", "--post", "--repo", "a/b"]
    assert main([*argv, "--pr", "1", "--api-url", f"http://127.0.0.1:{port}"]) == 3
    err = capsys.readouterr().err
    assert "cannot reach github" in err and "Traceback" not in err


def test_missing_token_is_a_usage_error(report_file, monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    argv = ["ci", "report", str(report_file), "-p", "github", "--post", "--repo", "a/b"]
    assert main([*argv, "--pr", "1"]) == 2
    assert "no token in $GITHUB_TOKEN" in capsys.readouterr().err


def test_without_post_the_body_is_printed(report_file, capsys):
    assert main(["ci", "report", str(report_file), "--provider", "github"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(MARKER) and "| gate0 | ❌ failed |" in out


@pytest.mark.parametrize("provider", ["jenkins", "aws"])
def test_file_providers_write_the_comment_and_refuse_post(report_file, tmp_path, capsys, provider):
    out = tmp_path / "comment.md"
    argv = ["ci", "report", str(report_file), "-p", provider]
    assert main([*argv, "--output", str(out)]) == 0
    assert "## Shipyard check" in out.read_text() and MARKER not in out.read_text()
    assert main([*argv, "--post"]) == 2
    assert "no comment API" in capsys.readouterr().err


def test_long_reports_are_cut_to_the_github_limit_with_a_pointer():
    report = make_report(summary="x" * 390, gates=400)
    link = "https://ci.example.test/runs/1"
    comment = render_comment(report, "github", link=link)
    assert comment.truncated
    assert len(comment.body) <= LIMITS["github"]
    assert comment.body.startswith(MARKER)
    assert f"[the full report]({link})" in comment.body
    whole = render_comment(report, "gitlab", link=link)
    assert not whole.truncated and len(whole.body) > LIMITS["github"]


def test_bad_inputs_are_usage_errors(tmp_path, report_file, capsys):
    assert main(["ci", "report", str(tmp_path / "missing.json"), "-p", "github"]) == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["ci", "report", str(tmp_path / "bad.json"), "-p", "github"]) == 2
    assert main(["ci", "report", str(report_file), "-p", "github", "--link", "javascript:x"]) == 2
    err = capsys.readouterr().err
    assert "no report at" in err and "cannot read" in err and "--link" in err
    assert "Traceback" not in err
