"""The registry lifecycle from the CLI: register, card, request, approve, promote, rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))


def sy(root: Path, user: str, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_USER": user}
    result = subprocess.run(
        [SHIPYARD, *args], cwd=root, capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == code, f"{args} -> {result.returncode}\n{result.stderr}"
    return result


def test_lifecycle_from_the_cli(tmp_path, model_dir):
    root = tmp_path / "project"
    root.mkdir()
    (root / "shipyard.yaml").write_text(
        "project: p\n"
        "governance: {approvals: 1, four_eyes: true, require_gates: true,"
        " model_card: [intended_use]}\n"
    )
    (root / "card.md").write_text("# Card\n\n## Intended use\n\nScoring applicants.\n")
    (root / "gates.json").write_text('{"passed": true}')
    sy(root, "root", "users", "add", "root", "--role", "admin")
    sy(root, "root", "users", "add", "alice", "--role", "developer")
    sy(root, "root", "users", "add", "bob", "--role", "approver")

    out = sy(root, "alice", "register", "credit", str(model_dir), "--json").stdout
    assert json.loads(out)["version"] == 1
    refused = sy(root, "alice", "promote", "credit:1", code=1)
    assert "may not become 'production'" in refused.stderr and "intended_use" in refused.stderr

    sy(
        root,
        "alice",
        "register",
        "credit",
        str(model_dir),
        "--card",
        "card.md",
        "--gates",
        "gates.json",
    )
    missing = sy(root, "alice", "request", "credit:2", code=1).stderr
    assert "1 more approval(s)" in missing
    assert "may not approve" in sy(root, "alice", "approve", "credit:2", code=1).stderr
    assert "ready to promote" in sy(root, "bob", "approve", "credit:2", "-m", "ok").stderr
    sy(root, "alice", "request", "credit:2")
    sy(root, "alice", "promote", "credit:2")
    card = sy(root, "alice", "card", "credit@production").stdout
    assert "Scoring applicants." in card and "# Model card: credit v2" in card

    # a second approved version, then roll back to the first production one
    sy(
        root,
        "alice",
        "register",
        "credit",
        str(model_dir),
        "--card",
        "card.md",
        "--gates",
        "gates.json",
    )
    sy(root, "bob", "approve", "credit:3")
    sy(root, "alice", "promote", "credit:3")
    assert "refusing without confirmation" in sy(root, "alice", "rollback", "credit", code=2).stderr
    sy(root, "alice", "rollback", "credit", "--yes")
    shown = json.loads(sy(root, "alice", "models", "credit@production").stdout)
    assert shown["version"] == 2
    assert "intact" in sy(root, "alice", "audit", "verify").stderr
    log = sy(root, "alice", "audit", "log", "--json").stdout
    actions = [e["action"] for e in json.loads(log)]
    assert actions.count("approval.approve") == 2 and "alias.rollback" in actions


def test_pickle_is_refused_from_the_cli(tmp_path):
    import pickle

    (tmp_path / "shipyard.yaml").write_text("project: p\n")
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    result = sy(tmp_path, "alice", "register", "m", "m.pkl", code=2)
    assert "refuses it" in result.stderr and "skops" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_governance_change_is_audited_once(tmp_path):
    (tmp_path / "shipyard.yaml").write_text("project: p\ngovernance: {approvals: 1}\n")
    sy(tmp_path, "alice", "models")
    sy(tmp_path, "alice", "models")
    (tmp_path / "shipyard.yaml").write_text("project: p\ngovernance: {approvals: 0}\n")
    sy(tmp_path, "alice", "models")
    log = json.loads(sy(tmp_path, "alice", "audit", "log", "--json").stdout)
    changes = [e for e in log if e["action"] == "policy.change"]
    assert [c["details"]["policy"]["approvals"] for c in changes] == [1, 0]


def test_cli_as_a_token_holder_against_a_server(tmp_path, model_dir):
    import http.client
    import socket
    import time

    root = tmp_path / "project"
    root.mkdir()
    (root / "shipyard.yaml").write_text(
        "project: p\ngovernance: {approvals: 1, four_eyes: true, require_gates: false}\n"
    )
    sy(root, "root", "users", "add", "root", "--role", "admin")
    sy(root, "root", "users", "add", "alice", "--role", "developer")
    sy(root, "root", "users", "add", "bob", "--role", "approver")
    alice = sy(root, "alice", "token", "create", "alice").stdout.strip()
    bob = sy(root, "bob", "token", "create", "bob").stdout.strip()
    sy(root, "alice", "register", "credit", str(model_dir))
    sy(root, "alice", "register", "credit", str(model_dir))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([SHIPYARD, "serve", "--port", str(port)], cwd=root)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        elsewhere = tmp_path / "laptop"  # no project here: everything goes over HTTP
        elsewhere.mkdir()
        url = f"http://127.0.0.1:{port}"

        def remote(token, *args, code=0):
            env = {**os.environ, "SHIPYARD_URL": url, "SHIPYARD_TOKEN": token}
            result = subprocess.run(
                [SHIPYARD, *args],
                cwd=elsewhere,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == code, f"{args}: {result.stderr}"
            return result

        assert "may not approve" in remote(alice, "approve", "credit:1", code=1).stderr
        assert "more approval" in remote(alice, "promote", "credit:1", code=1).stderr
        assert "ready to promote" in remote(bob, "approve", "credit:1").stderr
        remote(alice, "promote", "credit:1")
        remote(bob, "approve", "credit:2")
        remote(alice, "promote", "credit:2")
        assert "-> 1 (rolled back" in remote(alice, "rollback", "credit", "--yes").stderr
        assert remote("shp_bogus", "promote", "credit:2", code=2).returncode == 2
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = json.loads(sy(root, "root", "audit", "log", "--json").stdout)
    moves = [(e["actor"], e["action"]) for e in log if e["action"].startswith("alias.")]
    assert moves == [("alice", "alias.set"), ("alice", "alias.set"), ("alice", "alias.rollback")]
