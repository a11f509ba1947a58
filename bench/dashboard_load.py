"""Dashboard page load with many versions: server time and browser load time.

Builds a throw-away project whose model has N versions (default 500), each with run
metrics in its lineage, tags, and a full gate result document as `shipyard check`
writes it (plots embedded, ~100+ KB each), plus approvals and aliases. Then measures:

- server time: the model's page (all N versions: table and metrics chart) and the
  models list, rendered in-process through the ASGI app (median of --runs);
- browser load time: headless Chromium opening the same pages from `shipyard ui`
  on 127.0.0.1 (navigation start to the load event, median of --runs).

Goal: both under 1 s. No competing tool is run: MLflow's UI is a React app served by
its tracking server, a heavy separate install, and its registry page paginates
versions rather than drawing them all, so the figures would not compare like for like.

    .venv/bin/python bench/dashboard_load.py [--versions 500] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

MODEL = "credit-risk"


def gate_document(rng: random.Random, number: int) -> dict:
    """A gate result shaped like `shipyard check`'s, with embedded plot images."""
    plot = base64.b64encode(rng.randbytes(40_000)).decode()
    gates = [
        {"name": name, "status": "passed", "passed": True, "summary": f"{name} ok",
         "numbers": {"value": rng.random()}, "plots": {"chart": plot}}
        for name in ("data", "metrics", "fairness")
    ]  # fmt: skip
    return {"format": "shipyard.check/1", "id": f"2026{number:08d}", "passed": number % 7 != 0,
            "gates": gates}  # fmt: skip


def seed(root: Path, versions: int) -> None:
    from shipyard.project import open_project
    from shipyard.store import schema

    (root / "shipyard.yaml").write_text(f"project: {MODEL}\nstages: {{}}\n")
    rng = random.Random(0)
    with open_project(root) as project:
        md = project.metadata
        start = datetime(2026, 1, 1, tzinfo=UTC)
        with md.transaction() as tx:
            model_id = tx.execute(
                schema.models.insert().values(name=MODEL, created_at=start, created_by="bench")
            ).inserted_primary_key[0]
            for n in range(1, versions + 1):
                f1 = 0.6 + 0.2 * rng.random()
                lineage = {"run_id": f"run{n:06d}", "git_commit": f"{n:040x}",
                           "params": {"train.C": rng.random()},
                           "metrics": {"f1": f1, "roc_auc": f1 + 0.1, "accuracy": f1 + 0.15},
                           "data": {"data/raw.csv": f"{n:064x}"}}  # fmt: skip
                version_id = tx.execute(
                    schema.model_versions.insert().values(
                        model_id=model_id, version=n, oid=f"{n:064x}.dir", format="sklearn",
                        signature={"inputs": ["a", "b"]}, run_id=None, lineage=lineage,
                        gates=gate_document(rng, n), card={"intended_use": "bench"},
                        tags={"team": "risk", "n": str(n)}, description=f"version {n}",
                        trusted_pickle=False, status="registered",
                        created_at=start + timedelta(hours=n), created_by="bench",
                    )
                ).inserted_primary_key[0]  # fmt: skip
                if n % 3 == 0:
                    tx.execute(
                        schema.approvals.insert().values(
                            version_id=version_id, alias="production", actor="bob",
                            role="approver", decision="approve", at=start,
                        )
                    )  # fmt: skip
            tx.execute(
                schema.aliases.insert().values(
                    model_id=model_id, alias="production", version_id=version_id,
                    updated_at=start, updated_by="bench",
                )
            )  # fmt: skip


def server_times(root: Path, paths: list[str], runs: int) -> dict[str, list[float]]:
    import httpx

    from shipyard.cli.ui_cmd import build_app
    from shipyard.project import open_project

    project = open_project(root)
    app = build_app(project, ("testserver",))
    found: dict[str, list[float]] = {p: [] for p in paths}

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for path in paths:  # the first view also reads each version's gate summary
                started = time.perf_counter()
                await c.get(path)
                print(f"  first view of {path}: {(time.perf_counter() - started) * 1000:.0f} ms")
            for _ in range(runs):
                for path in paths:
                    started = time.perf_counter()
                    response = await c.get(path)
                    found[path].append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text[:200]

    asyncio.run(go())
    project.close()
    return found


def browser_times(root: Path, paths: list[str], runs: int) -> dict[str, list[float]] | str:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "ui", "--port", str(port)],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    found: dict[str, list[float]] = {p: [] for p in paths}
    try:
        import httpx

        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/ui/static/dashboard.css", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        chromium = os.environ.get("SHIPYARD_CHROMIUM") or (
            "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
        )
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page()
            for path in paths:
                page.goto(f"http://127.0.0.1:{port}{path}")  # warm-up
            for _ in range(runs):
                for path in paths:
                    page.goto(f"http://127.0.0.1:{port}{path}", wait_until="load")
                    seconds = page.evaluate(
                        "(() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return (n.loadEventEnd - n.startTime) / 1000; })()"
                    )
                    found[path].append(float(seconds))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return found


def report(title: str, found: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"  {'page':32} {'median':>9} {'min':>9} {'max':>9}   goal < 1 s")
    for path, values in found.items():
        median = statistics.median(values)
        verdict = "ok" if median < 1.0 else "OVER"
        print(
            f"  {path:32} {median * 1000:7.1f}ms {min(values) * 1000:7.1f}ms "
            f"{max(values) * 1000:7.1f}ms   {verdict}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        seed(root, args.versions)
        size = (root / ".shipyard" / "shipyard.db").stat().st_size / 2**20
        print(
            f"seeded {args.versions} versions of '{MODEL}' "
            f"in {time.perf_counter() - started:.1f} s "
            f"(database {size:.0f} MiB, gate documents with embedded plots)"
        )
        paths = [f"/ui/models/{MODEL}", "/ui/models"]
        report(
            "server time, warm (in-process ASGI, full page rendered)",
            server_times(root, paths, args.runs),
        )
        browser = browser_times(root, paths, args.runs)
        if isinstance(browser, str):
            print(f"\nbrowser load time: skipped: {browser}")
        else:
            report("browser load time (headless Chromium, navigation start to load event)", browser)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
