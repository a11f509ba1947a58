"""The Ray executor against a real local Ray head: stages run as Ray tasks in a folder
of their own, and their outputs come back through the artifact store."""

from __future__ import annotations

import filecmp
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ray_fixtures import free_port, ray_head, require_ray

from shipyard.errors import PipelineError
from shipyard.pipeline.executors import Console, LocalExecutor, StageJob
from shipyard.pipeline.ray_executor import RayExecutor, _check_reachable, parse_memory
from shipyard.pipeline.runner import RunOptions, RunReport, run_pipeline
from shipyard.pipeline.spec import Out, Stage
from shipyard.project import Project

__all__ = ["ray_head"]  # a fixture: imported so that pytest finds it here

# The standard test pipeline (conftest.PIPELINE) plus folders as outputs and deps, a
# stage in a sub-folder, an uncached metrics file, resources, and a stage that says
# where it ran.
STAGES = {
    "a": {"cmd": "cat in.txt > a.txt", "deps": ["in.txt"], "outs": ["a.txt"]},
    "b": {
        "cmd": "cat a.txt other.txt > b.txt",
        "deps": ["a.txt", "other.txt"],
        "params": ["b.x"],
        "outs": ["b.txt"],
    },
    "c": {
        "cmd": "cat a.txt > c.txt",
        "deps": ["a.txt"],
        "outs": ["c.txt"],
        "resources": {"cpus": 1, "memory": "64MiB"},
    },
    "d": {
        "cmd": ["cat b.txt c.txt > d.txt", "echo '{\"score\": 0.9}' > m.json"],
        "deps": ["b.txt", "c.txt"],
        "outs": ["d.txt"],
        "metrics": [{"m.json": {"cache": False}}],
    },
    "split": {
        "cmd": "mkdir -p parts/deep && cp a.txt parts/1.txt && echo two > parts/deep/2.txt",
        "deps": ["a.txt"],
        "outs": ["parts"],
        "resources": {"cpus": 1},
    },
    "tree": {
        "cmd": "find parts -type f | sort > tree.txt",
        "deps": ["parts"],
        "outs": ["tree.txt"],
    },
    "count": {
        "wdir": "sub",
        "cmd": "wc -l < lines.txt > count.txt && cat params.yaml >> count.txt",
        "deps": ["lines.txt"],
        "params": [{"params.yaml": None}],
        "outs": ["count.txt"],
    },
    "where": {"cmd": "pwd > where.txt; echo running in $PWD", "outs": ["where.txt"]},
}
OUTPUTS = ["a.txt", "b.txt", "c.txt", "d.txt", "m.json", "parts", "tree.txt", "sub/count.txt"]


def pipeline(**stages: dict) -> dict:
    return {"project": "demo", "stages": stages}


def run(ws: Any, executor: object, **options: object) -> RunReport:
    with Project(ws.root) as project:
        return run_pipeline(
            project,
            RunOptions(**options),  # type: ignore[arg-type]
            executor=executor,  # type: ignore[arg-type]
            console=Console(quiet=True),
        )


def same_tree(left: Path, right: Path) -> bool:
    if left.is_file():
        return right.is_file() and filecmp.cmp(left, right, shallow=False)
    cmp = filecmp.dircmp(left, right)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(same_tree(left / d, right / d) for d in cmp.subdirs)


@pytest.fixture(scope="module")
def ray_executor(ray_head: str) -> RayExecutor:
    return RayExecutor(address=ray_head)


# --- without a cluster ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (None, None),
        (1024, 1024),
        ("100", 100),
        ("100B", 100),
        ("4GB", 4 * 10**9),
        ("4G", 4 * 10**9),
        ("1.5 GB", 1_500_000_000),
        ("512MiB", 512 * 2**20),
        ("512Mi", 512 * 2**20),
        ("2KiB", 2048),
        ("1TiB", 2**40),
    ],
)
def test_parse_memory(size: str | int | None, expected: int | None) -> None:
    assert parse_memory(size) == expected


@pytest.mark.parametrize("size", ["lots", "4 PB", "-1GB", "GB"])
def test_parse_memory_refuses_nonsense(size: str) -> None:
    with pytest.raises(PipelineError, match="must be bytes or a size"):
        parse_memory(size)


def test_importing_the_module_does_not_import_ray() -> None:
    code = "import sys, shipyard.pipeline.ray_executor; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(PipelineError) as info:
        RayExecutor()
    assert info.value.hint == "pip install 'shipyard-ml[ray]'"


def test_ray_that_cannot_be_imported_is_a_pipeline_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_ray()
    executor = RayExecutor(address="127.0.0.1:1")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(PipelineError) as info:
        executor._ray()
    assert info.value.hint == "pip install 'shipyard-ml[ray]'"


def test_resources_become_ray_options() -> None:
    from shipyard.pipeline.ray_executor import _Request

    stage = Stage("s", ("true",), resources={"cpus": 2, "gpus": 1, "memory": "4GiB"})
    assert _Request.of(stage).options() == {"num_cpus": 2, "num_gpus": 1, "memory": 4 * 2**30}
    assert _Request.of(Stage("s", ("true",))).options() == {"num_cpus": 1, "num_gpus": 0}


@pytest.mark.parametrize("form", ["127.0.0.1:{}", "ray://127.0.0.1:{}"])
def test_an_address_where_nothing_listens_is_refused_at_once(form: str) -> None:
    with pytest.raises(ConnectionError, match=r"nothing answers at 127\.0\.0\.1"):
        _check_reachable(form.format(free_port()))


def test_cli_says_when_it_cannot_reach_the_cluster(ws: Any) -> None:
    require_ray()
    ws.config(pipeline(a=STAGES["a"]))
    shipyard = Path(sys.executable).with_name("shipyard")
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    done = subprocess.run(
        [shipyard, "run", "--executor", "ray", "--ray-address", address],
        cwd=ws.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert f"cannot connect to the Ray cluster at {address}" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


# --- on a real cluster ------------------------------------------------------------------
def test_pipeline_on_ray_matches_local_and_comes_back_through_the_store(
    ray_executor: RayExecutor, ws: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ws.config(pipeline(**STAGES))
    ws.write("sub/lines.txt", "1\n2\n3\n")
    ws.write("sub/params.yaml", "n: 3\n")
    local = type(ws)(tmp_path_factory.mktemp("local"))
    for name in ("in.txt", "other.txt", "params.yaml", "shipyard.yaml", "sub"):
        if (ws.root / name).is_dir():
            shutil.copytree(ws.root / name, local.root / name)
        else:
            shutil.copy2(ws.root / name, local.root / name)

    report = run(ws, ray_executor, jobs=2)
    assert report.status == "succeeded", [(o.name, o.reason) for o in report.stages]
    assert ws.ran(report) == set(STAGES)
    assert run(local, LocalExecutor()).status == "succeeded"

    for rel in OUTPUTS:
        assert same_tree(ws.root / rel, local.root / rel), rel
    assert (ws.root / "d.txt").read_text() == "input\nother\ninput\n"
    assert sorted(p.name for p in (ws.root / "parts").rglob("*")) == ["1.txt", "2.txt", "deep"]

    # The stage ran in a folder of its own, not in the workspace, and not even on a path
    # it shares with it: its output reached the workspace through the artifact store.
    ray_pwd = Path((ws.root / "where.txt").read_text().strip())
    assert not ray_pwd.is_relative_to(ws.root.resolve())
    assert not ray_pwd.exists()  # the task's scratch folder is gone
    assert Path((local.root / "where.txt").read_text().strip()) == local.root.resolve()

    outcomes = {o.name: o for o in report.stages}
    assert outcomes["d"].metrics == {"score": 0.9}
    assert outcomes["d"].outs["m.json"] is None  # uncached, yet in the workspace
    with Project(ws.root) as project:
        for out, oid in outcomes["split"].outs.items():
            assert oid is not None and project.artifacts.exists(oid), out
        log = project.state_dir / "logs" / report.run_id / "where.log"  # type: ignore[operator]
    assert f"running in {ray_pwd}" in log.read_text()
    assert outcomes["where"].resources["ray_node_ip"] == "127.0.0.1"
    assert outcomes["where"].log_tail == [f"running in {ray_pwd}"]

    again = run(ws, ray_executor, jobs=2)
    assert again.status == "up-to-date"
    assert set(ws.statuses(again).values()) == {"up-to-date"}

    ws.write("params.yaml", "b: {x: 2, unrelated: 1}\n")
    ws.write("sub/params.yaml", "n: 4\n")
    changed = run(ws, ray_executor, jobs=2)
    assert changed.status == "succeeded"
    assert ws.ran(changed) == {"b", "count"}  # b's output is unchanged: d is up to date
    assert (ws.root / "sub/count.txt").read_text() == "3\nn: 4\n"


def test_a_failing_stage_reports_its_exit_code_and_log_tail(
    ray_executor: RayExecutor, ws: Any
) -> None:
    ws.config(
        pipeline(
            bad={"cmd": "echo about to fail; echo really >&2; exit 3", "outs": ["x.txt"]},
            after={"cmd": "cp x.txt y.txt", "deps": ["x.txt"], "outs": ["y.txt"]},
        )
    )
    report = run(ws, ray_executor)
    assert report.status == "failed"
    bad, after = report.stages
    assert (bad.status, bad.exit_code, bad.reason) == ("failed", 3, "command exited with code 3")
    assert bad.log_tail == ["about to fail", "really"]
    assert after.status == "skipped"
    assert not (ws.root / "x.txt").exists()


def test_a_missing_output_fails_the_stage(ray_executor: RayExecutor, ws: Any) -> None:
    ws.config(pipeline(lazy={"cmd": "echo done > other.out", "outs": ["never.txt"]}))
    (stage,) = run(ws, ray_executor).stages
    assert stage.status == "failed"
    assert "did not write its declared output 'never.txt'" in stage.reason


def test_a_gpu_stage_gets_a_gpu(ray_executor: RayExecutor, ws: Any) -> None:
    ws.config(
        pipeline(
            gpu={
                "cmd": 'echo "cuda=$CUDA_VISIBLE_DEVICES" > gpu.txt',
                "outs": ["gpu.txt"],
                "resources": {"gpus": 1, "cpus": 0.5},
            }
        )
    )
    (stage,) = run(ws, ray_executor).stages
    assert stage.status == "ran", stage.reason
    assert (ws.root / "gpu.txt").read_text() == "cuda=0\n"  # Ray assigned the GPU


def test_a_stage_no_node_can_place_fails_at_once(ray_executor: RayExecutor, ws: Any) -> None:
    ws.config(pipeline(gpu={"cmd": "nvidia-smi", "outs": ["x"], "resources": {"gpus": 2}}))
    started = time.monotonic()
    (stage,) = run(ws, ray_executor).stages
    assert stage.status == "failed"
    assert "asks for 1 CPU(s), 2 GPU(s), but no node of the Ray cluster" in stage.reason
    assert "the largest has 2 CPU(s), 1 GPU(s)" in stage.reason
    assert time.monotonic() - started < 30


def test_cancel_stops_the_stage_and_its_processes(ray_head: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "sleep.pid"
    stage = Stage(
        "slow",
        (f"echo started; sleep 60 & echo $! > {pid_file}; wait",),
        outs=(Out("x"),),
    )
    job = StageJob(stage, tmp_path, tmp_path / "slow.log")
    cancel = threading.Event()

    def cancel_when_started() -> None:
        while not pid_file.exists() or not pid_file.read_text().strip():
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_when_started, daemon=True).start()
    started = time.monotonic()
    executor = RayExecutor(address=ray_head, artifacts_url=str(tmp_path / "store"))
    result = executor.run(job, cancel, Console(quiet=True))
    assert time.monotonic() - started < 30
    assert result.exit_code != 0 and result.outs is None
    if result.exit_code == -signal.SIGTERM:  # the task stopped its commands itself
        assert "started" in job.log_path.read_text()
    else:  # a loaded machine: the driver's force-cancel after the grace period
        assert "cancelled" in job.log_path.read_text()
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the stage's `sleep` outlived the cancelled task"


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_task_that_raises_is_a_clean_failure(ray_head: str, tmp_path: Path) -> None:
    import ray

    executor = RayExecutor(address=ray_head, artifacts_url=str(tmp_path / "store"))
    executor._ray()

    def boom(*args: object) -> None:  # defined here: Ray ships it by value
        raise RuntimeError("the node is on fire")

    executor._remote = ray.remote(max_retries=0)(boom)
    job = StageJob(Stage("s", ("true",)), tmp_path, tmp_path / "s.log")
    result = executor.run(job, threading.Event(), Console(quiet=True))
    assert result.exit_code == 1
    assert result.outs is None
    assert result.log_tail == [
        "ray: the stage's Ray task failed: RuntimeError: the node is on fire"
    ]
    assert job.log_path.read_text() == result.log_tail[0] + "\n"


def test_an_unreachable_store_is_a_clean_failure(
    ray_head: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shipyard.pipeline.ray_executor as module

    # The driver does not create the store's folder, as if it were on another machine.
    # (The task runs in a Ray worker, where this patch does not reach.)
    monkeypatch.setattr(module, "_local_folder", lambda url: None)
    executor = RayExecutor(address=ray_head, artifacts_url=str(tmp_path / "store"))
    job = StageJob(Stage("s", ("true",)), tmp_path, tmp_path / "s.log")
    result = executor.run(job, threading.Event(), Console(quiet=True))
    assert result.exit_code == 1
    assert "is a folder this Ray node does not have" in result.log_tail[0]
    assert any("hint: on a cluster, set store.artifacts" in line for line in result.log_tail)


@pytest.mark.slow
def test_example_project_runs_on_ray(ray_head: str, tmp_path: Path) -> None:
    shipyard = shutil.which("shipyard", path=str(Path(sys.executable).parent))
    assert shipyard is not None
    env = dict(os.environ)  # with the cluster's settings and token

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [shipyard, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )

    init = cli("init", "--example", "credit-risk")
    assert init.returncode == 0, init.stderr
    first = cli("run", "--executor", "ray", "--ray-address", ray_head)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "metrics.json").is_file()
    assert (tmp_path / "model").exists()
    second = cli("run", "--executor", "ray", "--ray-address", ray_head)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "up to date" in second.stdout + second.stderr
