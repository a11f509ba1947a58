"""The ``ray`` executor: each stage runs as a Ray task, anywhere on a cluster.

The driver (the machine running ``shipyard run``) and the node that runs a stage need
not share a disk. Everything moves through the artifact store:

1. The driver puts the stage's dependencies, the params files it reads and any
   ``persist`` outputs into the store and submits a task with ``{path: object id}``.
2. The task restores them into a fresh temporary folder on its node, runs the stage's
   commands there with :func:`run_commands`, puts every declared output into the store
   and returns ``{path: object id}`` with the exit code, resource use and the log.
3. The driver writes the log to ``job.log_path`` and returns
   ``ExecResult(outs=...)``; the runner restores cached outputs from the store into the
   workspace. Outputs declared with ``cache: false`` travel the same way, but the
   executor restores them itself and reports them as uncached (``None``).

The store must therefore be reachable from every node: on a real cluster, an object
store (``s3://...``) or a shared file system, set with ``store.artifacts`` in
``shipyard.yaml`` or ``SHIPYARD_ARTIFACTS``. The store URL is, in order:
``job.artifacts_url`` (if the runner's StageJob carries one), the ``artifacts_url``
given to (or set on) the executor, else the URL the project at ``job.root`` resolves
to, which is the one the runner itself uses. Cluster nodes need ``shipyard-ml``
installed (the same version as the driver), as for any Ray code; stage commands see
the environment of the Ray worker, not of the driver.

A stage's output is printed when the stage ends, not line by line. Cancelling (Ctrl-C)
asks the task to stop its commands' process group, and kills the task if it has not
stopped within 15 seconds. A declared output the stage did not write fails the stage.

Ray is imported only when a stage is submitted: importing this module, or a run in
which every stage is up to date, never starts or contacts Ray.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import PipelineError
from shipyard.pipeline.executors import Console, ExecResult, StageJob, run_commands

if TYPE_CHECKING:
    from shipyard.pipeline.spec import Stage
    from shipyard.store.artifacts import ArtifactStore

__all__ = ["RayExecutor", "parse_memory"]

_HINT_INSTALL = "pip install 'shipyard-ml[ray]'"
_TAIL = 20
_CANCEL_GRACE = 15.0  # seconds a cancelled task gets to stop its commands before force

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def parse_memory(value: str | int | float | None) -> int | None:
    """Bytes from a size: an int, or "4GB"/"4G" (powers of 1000), "512MiB"/"512Mi"
    (powers of 1024), "100" or "100B" (bytes). ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise PipelineError(f"memory must be bytes or a size like '4GB', not {value!r}")
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE.match(value)
    if not match:
        raise PipelineError(
            f"memory {value!r} must be bytes or a size like '4GB' or '512MiB'",
            hint="use K, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024)",
        )
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** _POWERS[unit.upper()])


@dataclass(frozen=True)
class _Request:
    num_cpus: float
    num_gpus: float
    memory: int | None

    @staticmethod
    def of(stage: Stage) -> _Request:
        res = stage.resources or {}
        cpus = res.get("cpus")
        return _Request(
            num_cpus=float(1 if cpus is None else cpus),
            num_gpus=float(res.get("gpus") or 0),
            memory=parse_memory(res.get("memory")),
        )

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory:
            opts["memory"] = self.memory
        return opts

    def describe(self) -> str:
        parts = [f"{self.num_cpus:g} CPU(s)"]
        if self.num_gpus:
            parts.append(f"{self.num_gpus:g} GPU(s)")
        if self.memory:
            parts.append(f"{self.memory / 2**30:.2f} GiB memory")
        return ", ".join(parts)

    def fits(self, resources: dict[str, float]) -> bool:
        return (
            resources.get("CPU", 0) >= self.num_cpus
            and resources.get("GPU", 0) >= self.num_gpus
            and (not self.memory or resources.get("memory", 0) >= self.memory)
        )


class RayExecutor:
    """Runs each stage as a Ray task with the stage's ``resources``.

    ``address``: a Ray cluster (``host:port``, ``ray://host:10001`` for Ray Client,
    ``auto``), or ``None``: the running cluster if one can be found, else a local one on
    127.0.0.1 without a dashboard. ``artifacts_url``: the artifact store the tasks use;
    ``None`` means the project's own (``Project(job.root).artifacts_url``).
    ``check_resources``: refuse a stage no node of the cluster could ever place (turn off
    for an autoscaling cluster that adds nodes on demand).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        artifacts_url: str | None = None,
        *,
        check_resources: bool = True,
    ) -> None:
        if "ray" not in sys.modules and not _ray_installed():
            raise PipelineError(
                "the ray executor needs Ray, which is not installed", hint=_HINT_INSTALL
            )
        self.address = address
        self.artifacts_url = artifacts_url
        self.check_resources = check_resources
        self._lock = threading.Lock()
        self._remote: Any = None
        self._stores: dict[str, ArtifactStore] = {}

    # --- connecting ---------------------------------------------------------------
    def _ray(self) -> Any:
        """Import Ray and connect to the cluster, once per process."""
        with self._lock:
            if self._remote is not None:
                import ray

                return ray
            local = self.address is None and not _cluster_visible()
            if local and "ray" not in sys.modules:
                # Ray's nodes advertise (and listen on) the machine's network address
                # unless this is set before Ray is imported; children inherit it.
                os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            try:
                import ray
            except ImportError as exc:
                raise PipelineError(
                    f"the ray executor needs Ray, which cannot be imported: {exc}",
                    hint=_HINT_INSTALL,
                ) from None
            if not ray.is_initialized():
                self._connect(ray, local)
            self._remote = ray.remote(max_retries=0)(_run_stage_task)
            return ray

    def _connect(self, ray: Any, local: bool) -> None:
        import logging

        common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        where = self.address or "auto"
        # Stages run in the runner's threads, so Ray (rightly) leaves SIGTERM alone; it
        # need not warn about that on every run.
        quiet = _DropMessage("SIGTERM handler is not set")
        logging.getLogger("ray._private.worker").addFilter(quiet)
        try:
            _check_reachable(self.address)
            if where.startswith("ray://"):
                ray.init(address=where)  # Ray Client passes other options to the server
                return
            if not local:
                try:
                    ray.init(address=where, **common)
                    return
                except ConnectionError:
                    if self.address is not None:
                        raise
            where = "a new local cluster"
            ray.init(
                _node_ip_address="127.0.0.1",
                include_dashboard=False,
                **common,
            )
        except Exception as exc:
            raise PipelineError(
                f"cannot connect to the Ray cluster at {where}: {_first_line(exc)}",
                hint="start one with `ray start --head`, or pass --ray-address host:port "
                "(ray://host:10001 for Ray Client)",
            ) from None
        finally:
            logging.getLogger("ray._private.worker").removeFilter(quiet)

    def _store(self, job: StageJob) -> tuple[str, ArtifactStore]:
        url = getattr(job, "artifacts_url", None) or self.artifacts_url
        if url is None:
            from shipyard.project import Project

            url = Project(job.root).artifacts_url
        with self._lock:
            store = self._stores.get(url)
            if store is None:
                from shipyard.store import open_artifacts

                store = self._stores[url] = open_artifacts(url)
                folder = _local_folder(url)
                if folder is not None:  # so that a task on this machine finds it
                    folder.mkdir(parents=True, exist_ok=True)
        return url, store

    # --- running ------------------------------------------------------------------
    def run(self, job: StageJob, cancel: threading.Event, console: Console) -> ExecResult:
        stage = job.stage
        started = time.monotonic()
        request = _Request.of(stage)
        url, store = self._store(job)
        inputs = _upload_inputs(job, store)
        if cancel.is_set():
            return _failed(job, console, "cancelled before it was submitted", -signal.SIGTERM)
        ray = self._ray()
        if self.check_resources:
            self._check_feasible(ray, stage, request)
        task = self._remote.options(name=f"shipyard:{stage.name}", **request.options())
        from shipyard import __version__

        ref = task.remote(stage, url, inputs, dict(job.env), __version__)
        try:
            payload = _wait(ray, ref, cancel)
        except Exception as exc:  # the task raised, its worker or node died, ...
            return _failed(job, console, f"the stage's Ray task failed: {_task_error(exc)}", 1)
        if payload is None:  # cancelled before it could report back
            return _failed(job, console, "cancelled", -signal.SIGTERM)
        if "error" in payload:  # it could not set up or store the outputs
            return _failed(job, console, payload["error"], 1)
        _write_log(job.log_path, payload["log"])
        for line in payload["lines"]:
            console.stage_line(stage.name, line)
        resources = {
            **payload["resources"],
            "ray_node_ip": payload["node"],
            "ray_wall_seconds": round(time.monotonic() - started, 3),
        }
        result = ExecResult(
            payload["exit_code"], payload["duration"], resources, payload["log_tail"]
        )
        if result.exit_code != 0 or cancel.is_set():
            return result
        result.outs = self._bring_back(job, store, payload["outs"])
        return result

    def _check_feasible(self, ray: Any, stage: Stage, request: _Request) -> None:
        try:
            nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        except Exception:  # the check is advisory; Ray will say more if it matters
            return
        if nodes and not any(request.fits(n) for n in nodes):
            best = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)))
            raise PipelineError(
                f"stage '{stage.name}' asks for {request.describe()}, but no node of the Ray "
                f"cluster has that much (the largest has {best.get('CPU', 0):g} CPU(s), "
                f"{best.get('GPU', 0):g} GPU(s), "
                f"{best.get('memory', 0) / 2**30:.2f} GiB memory)",
                stage=stage.name,
                hint="lower the stage's `resources`, add a node that has them, or for an "
                "autoscaling cluster use RayExecutor(check_resources=False)",
            )

    def _bring_back(
        self, job: StageJob, store: ArtifactStore, outs: dict[str, str]
    ) -> dict[str, str | None]:
        """The outputs' map for the runner. Uncached outputs are restored here, since
        the runner restores only what it is told is cached."""
        stage = job.stage
        missing = [o.path for o in stage.outs if o.path not in outs]
        if missing:
            # Without this the runner would record the stage as done: it restores what the
            # map names and does not check the declared outputs against it.
            raise PipelineError(
                f"stage '{stage.name}' finished but did not write its declared output "
                f"'{missing[0]}'",
                stage=stage.name,
                hint="fix the command, or remove the path from the stage's outs",
            )
        result: dict[str, str | None] = {}
        for out in stage.outs:
            oid = outs[out.path]
            if out.cache:
                result[out.path] = oid
            else:
                store.get(oid, job.root / out.path)
                result[out.path] = None
        return result


# --- the driver's side ------------------------------------------------------------------
class _DropMessage:
    """A logging filter that drops records starting with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


def _upload_inputs(job: StageJob, store: ArtifactStore) -> dict[str, str]:
    """Put what the stage reads into the store: ``{relative path: object id}``."""
    stage = job.stage
    wanted = list(stage.deps)
    wanted += [p.file for p in stage.params]
    wanted += [o.path for o in stage.outs if o.persist]  # persistent outputs start as they are
    inputs: dict[str, str] = {}
    for rel in dict.fromkeys(wanted):
        path = job.root / rel
        if path.is_dir() or path.is_file():
            inputs[rel] = store.put(path).oid
        elif rel in stage.deps:
            raise PipelineError(
                f"stage '{stage.name}' depends on '{rel}', which does not exist",
                stage=stage.name,
            )
    return inputs


def _wait(ray: Any, ref: Any, cancel: threading.Event) -> dict[str, Any] | None:
    """The task's result; on ``cancel``, stop the task (gracefully first) and return what
    it reported, or ``None``."""
    while True:
        ready, _ = ray.wait([ref], timeout=0.1)
        if ready:
            return ray.get(ref)
        if cancel.is_set():
            break
    ray.cancel(ref)  # KeyboardInterrupt in the task: it stops its commands' process group
    try:
        return ray.get(ref, timeout=_CANCEL_GRACE)
    except Exception:
        ray.cancel(ref, force=True)
        return None


def _task_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # RayTaskError: the exception the task raised
    if isinstance(cause, BaseException):
        exc = cause
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _failed(job: StageJob, console: Console, message: str, code: int) -> ExecResult:
    lines = [f"ray: {line}" for line in message.splitlines() or [""]]
    _write_log(job.log_path, "".join(line + "\n" for line in lines))
    for line in lines:
        console.stage_line(job.stage.name, line)
    return ExecResult(code, 0.0, {}, lines[-_TAIL:])


def _write_log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", errors="replace")


def _check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """Fail fast when nothing listens at ``host:port``: ``ray.init`` would wait forever."""
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # not host:port; let Ray judge it
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} ({exc})") from None


def _ray_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def _cluster_visible() -> bool:
    """Whether ``ray.init("auto")`` could find a cluster, judged without importing Ray."""
    if os.environ.get("RAY_ADDRESS"):
        return True
    if Path(tempfile.gettempdir(), "ray", "ray_current_cluster").exists():
        return True
    import psutil

    return any(p.info.get("name") == "gcs_server" for p in psutil.process_iter(["name"]))


# --- the task's side (runs on a cluster node) -------------------------------------------
class _Collect(Console):
    """Keeps the stage's output lines to send back to the driver."""

    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.lines: list[str] = []

    def stage_line(self, stage: str, text: str) -> None:
        with self._lock:
            self.lines.append(text)


def _run_stage_task(
    stage: Stage, store_url: str, inputs: dict[str, str], env: dict[str, str], version: str
) -> dict[str, Any]:
    """Restore the inputs into a temporary folder, run the commands, store the outputs."""
    import platform

    from shipyard import __version__
    from shipyard.store import open_artifacts
    from shipyard.store.artifacts import safe_join

    scratch = Path(tempfile.mkdtemp(prefix=f"shipyard-{stage.name}-"))
    try:
        _check_store_reachable(store_url)
        store = open_artifacts(store_url)
        work = scratch / "work"
        work.mkdir()
        for rel in sorted(inputs, key=lambda r: r.count("/")):  # a folder before its files
            store.get(inputs[rel], safe_join(work, rel))
        (work / stage.wdir).mkdir(parents=True, exist_ok=True)
        for out in stage.outs:
            safe_join(work, out.path).parent.mkdir(parents=True, exist_ok=True)
        job = StageJob(stage, work, scratch / "stage.log", env)
        console = _Collect()
        if version != __version__:
            console.lines.append(
                f"shipyard: warning: this node has shipyard {__version__}, the driver {version}"
            )
        result = _run_interruptibly(job, console)
        log = job.log_path.read_text(encoding="utf-8", errors="replace")
        outs: dict[str, str] = {}
        if result.exit_code == 0:
            for out in stage.outs:
                path = work / out.path
                if path.is_file() or path.is_dir():
                    outs[out.path] = store.put(path).oid
        return {
            "exit_code": result.exit_code,
            "duration": result.duration,
            "resources": result.resources,
            "log_tail": result.log_tail,
            "log": log,
            "lines": console.lines,
            "outs": outs,
            "node": _node_ip(platform.node()),
        }
    except Exception as exc:  # setting up or storing failed: say what, not a traceback
        return {"error": f"on node {_node_ip(platform.node())}: {type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_interruptibly(job: StageJob, console: Console) -> ExecResult:
    """``run_commands`` in a thread, so that a ``ray.cancel`` (a KeyboardInterrupt in this
    thread) stops the commands' process group instead of leaving it running."""
    stop = threading.Event()
    done = threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = run_commands(job, stop, console, job.root / job.stage.wdir)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name=f"stage-{job.stage.name}", daemon=True).start()
    # Event.wait, not Thread.join: a KeyboardInterrupt inside join() can leave the thread
    # marked as finished while it still runs.
    try:
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        stop.set()
        while not done.wait(0.1):
            pass
    if "error" in box:
        raise box["error"]
    result: ExecResult = box["result"]
    if stop.is_set() and result.exit_code == 0:
        result.exit_code = -signal.SIGINT
    return result


def _local_folder(url: str) -> Path | None:
    """The folder of a local artifact store; ``None`` for fsspec URLs."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    return None if "://" in url else Path(url)


def _check_store_reachable(url: str) -> None:
    folder = _local_folder(url)
    if folder is not None and not folder.is_dir():
        raise PipelineError(
            f"the artifact store '{url}' is a folder this Ray node does not have",
            hint="on a cluster, set store.artifacts (or SHIPYARD_ARTIFACTS) to an object "
            "store such as s3://bucket/prefix, or to a shared file system",
        )


def _node_ip(fallback: str) -> str:
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:
        return fallback
