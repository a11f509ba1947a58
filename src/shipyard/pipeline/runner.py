"""``shipyard run``: decide, per stage, to skip, restore or run; run; record lineage.

A stage is *up to date* when its fingerprint equals the one in ``shipyard.lock`` and
its outputs still hash to what was recorded. Otherwise the run cache (successful stage
runs in the metadata store, keyed by fingerprint) may hold its outputs, which are then
restored from the artifact store; failing that, it runs. Decisions are made when a
stage's upstream stages have finished, so they see the dependencies as they are now.

The metadata and artifact stores are opened only when something is not up to date: a
no-op run reads the cached spec, the lock file and the stat cache, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.core.fingerprint import stage_fingerprint
from shipyard.errors import PipelineError, ShipyardError
from shipyard.pipeline.executors import Console, ExecResult, Executor, LocalExecutor, StageJob
from shipyard.pipeline.lockfile import LockEntry, LockFile
from shipyard.pipeline.params import ParamReader
from shipyard.pipeline.spec import Stage
from shipyard.pipeline.statcache import StatCache
from shipyard.project import STATE_DIR, Project

__all__ = [
    "RunOptions",
    "RunReport",
    "StageOutcome",
    "pipeline_status",
    "plan_selection",
    "run_pipeline",
]

# Terminal states of a stage in one run.
UP_TO_DATE, RAN, RESTORED, FAILED, SKIPPED, WOULD_RUN = (
    "up-to-date",
    "ran",
    "restored",
    "failed",
    "skipped",
    "would-run",
)


@dataclass
class StageOutcome:
    name: str
    status: str = "pending"
    reason: str = ""
    fingerprint: str | None = None
    deps: dict[str, str] = field(default_factory=dict)
    outs: dict[str, str | None] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    duration: float | None = None
    log_tail: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    log_oid: str | None = None


@dataclass
class RunReport:
    run_id: str | None
    status: str  # succeeded | failed | interrupted | up-to-date | dry
    stages: list[StageOutcome]

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "up-to-date", "dry")


@dataclass(frozen=True)
class RunOptions:
    force: bool = False
    stages: tuple[str, ...] = ()  # run these (and what they need); empty means all
    downstream: bool = False  # also the stages that depend on `stages`
    single: bool = False  # only `stages`, not their upstream
    dry: bool = False
    jobs: int = 1
    message: str | None = None


def plan_selection(project: Project, options: RunOptions) -> list[str]:
    """The stages this run considers, in execution order."""
    spec = project.spec
    unknown = [s for s in options.stages if s not in spec.stages]
    if unknown:
        raise PipelineError(
            f"no stage named {', '.join(map(repr, unknown))}",
            hint=f"stages in this project: {', '.join(spec.stages) or '(none)'}",
        )
    if not options.stages:
        return list(spec.stages)
    chosen = set(options.stages)
    if options.downstream:
        chosen = spec.graph.downstream_of(chosen)
    if not options.single:
        chosen = spec.graph.upstream_of(chosen)
    return [s for s in spec.stages if s in chosen]


class _Run:
    """State of one pipeline run; stage decisions run in worker threads."""

    def __init__(
        self, project: Project, options: RunOptions, executor: Executor, console: Console
    ) -> None:
        self.project = project
        self.options = options
        self.executor = executor
        self.console = console
        self.root = project.root
        self.spec = project.spec
        self.lock = LockFile(self.root)
        self.params = ParamReader(self.root, self.spec)
        self.stat = StatCache(self.root / STATE_DIR / "cache" / "stat.db")
        self.cancel = threading.Event()
        self.run_id: str | None = None
        self.started_at: datetime | None = None
        self._mutex = threading.RLock()
        self.outcomes: dict[str, StageOutcome] = {}

    # --- lazily opened state ----------------------------------------------------------
    def _ensure_run(self) -> str:
        """The run's id, claimed the first time a stage does real work. The database
        row is written at the end (``record_run``), so a fresh project's store is not
        created before its first stage starts."""
        with self._mutex:
            if self.run_id is None:
                import secrets

                self.run_id = secrets.token_hex(6)
                self.started_at = _now()
            return self.run_id

    def _create_run_record(self) -> None:
        from shipyard.pipeline.lineage import environment, git_state

        commit, dirty = git_state(self.root)
        self.project.metadata.create_run(
            self.spec.project,
            run_id=self.run_id,
            started_at=self.started_at,
            git_commit=commit,
            git_dirty=dirty,
            environment={
                **environment(self.root / STATE_DIR / "cache"),
                "executor": self.executor.name,
            },
        )

    def _fresh_project(self) -> bool:
        """No metadata database yet (embedded default): so no run cache to consult."""
        default = f"sqlite:///{self.project.state_dir / 'shipyard.db'}"
        return (
            self.project.db_url == default and not (self.project.state_dir / "shipyard.db").exists()
        )

    # --- hashing --------------------------------------------------------------------
    def _oid(self, rel: str) -> str | None:
        with self._mutex:  # the stat cache's SQLite connection is not shared across threads
            return self.stat.oid(self.root / rel)

    def _dep_oids(self, stage: Stage) -> dict[str, str]:
        deps = {}
        for dep in stage.deps:
            oid = self._oid(dep)
            if oid is None:
                producer = self._producer(dep)
                raise PipelineError(
                    f"stage '{stage.name}' depends on '{dep}', which does not exist",
                    stage=stage.name,
                    hint=(
                        f"stage '{producer}' should write it; check its outs"
                        if producer
                        else "create it, add it with `shipyard data add`, or fix the path"
                    ),
                )
            deps[dep] = oid
        return deps

    def _producer(self, path: str) -> str | None:
        from shipyard.core.dag import path_overlaps

        for name, stage in self.spec.stages.items():
            if any(path_overlaps(path, out) for out in stage.out_paths):
                return name
        return None

    # --- deciding -------------------------------------------------------------------
    def decide(self, stage: Stage, outcome: StageOutcome) -> str:
        """Fill in the fingerprint and return what to do: up-to-date, restore or run."""
        outcome.deps = self._dep_oids(stage)
        outcome.params = self.params.values(stage)
        outcome.fingerprint = stage_fingerprint(
            commands=stage.commands,
            wdir=stage.wdir,
            deps=outcome.deps,
            params=outcome.params,
            env=stage.env,
            outs=stage.out_paths,
        )
        entry = self.lock.stages.get(stage.name)
        if self.options.force:
            outcome.reason = "forced with --force"
            return "run"
        if stage.always_changed:
            outcome.reason = "always_changed is set"
            return "run"
        if entry is not None and (entry.fingerprint == outcome.fingerprint or stage.frozen):
            return self._check_outputs(stage, entry, outcome)
        outcome.reason = _why_changed(entry, outcome, stage)
        return "restore" if self._run_cache(outcome) else "run"

    def _check_outputs(self, stage: Stage, entry: LockEntry, outcome: StageOutcome) -> str:
        missing = []
        for out in stage.outs:
            recorded = entry.outs.get(out.path)
            current = self._oid(out.path)
            if current is None:
                missing.append(out)
            elif recorded is not None and current != recorded:
                outcome.reason = f"output '{out.path}' was modified"
                return "run"
        if not missing:
            outcome.outs = dict(entry.outs)
            return UP_TO_DATE
        uncached = [o.path for o in missing if entry.outs.get(o.path) is None]
        if not uncached and all(self._store_has(entry.outs[o.path]) for o in missing):
            outcome.outs = dict(entry.outs)
            outcome.reason = "missing output(s) " + ", ".join(f"'{o.path}'" for o in missing)
            return "restore"
        outcome.reason = f"output '{missing[0].path}' is missing and not in the cache"
        return "run"

    def _store_has(self, oid: str | None) -> bool:
        return oid is not None and self.project.artifacts.exists(oid)

    def _run_cache(self, outcome: StageOutcome) -> bool:
        assert outcome.fingerprint is not None
        if self._fresh_project():
            return False
        cached = self.project.metadata.cached_outs(outcome.fingerprint)
        if cached is None or not all(self._store_has(oid) for oid in cached.values()):
            return False
        outcome.outs = cached
        outcome.reason += " (outputs found in the run cache)"
        return True

    # --- acting ---------------------------------------------------------------------
    def restore(self, stage: Stage, outcome: StageOutcome) -> None:
        for path, oid in outcome.outs.items():
            if oid is not None:
                self.project.artifacts.get(oid, self.root / path)
        outcome.metrics = self._read_metrics(stage)

    def execute(self, stage: Stage, outcome: StageOutcome) -> ExecResult:
        for out in stage.outs:
            target = self.root / out.path
            if not out.persist:
                _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
        run_id = self._ensure_run()
        job = StageJob(
            stage, self.root, self.root / STATE_DIR / "logs" / run_id / f"{stage.name}.log"
        )
        result = self.executor.run(job, self.cancel, self.console)
        if job.log_path.exists():
            outcome.log_oid = self.project.artifacts.put_file(job.log_path).oid
        outcome.exit_code = result.exit_code
        outcome.resources = result.resources
        outcome.log_tail = result.log_tail
        outcome.duration = result.duration
        return result

    def collect_outputs(self, stage: Stage, outcome: StageOutcome, result: ExecResult) -> None:
        """Check every declared output exists, parse metrics, store outputs in the cache."""
        if result.outs is not None:  # the executor stored them remotely: bring them here
            missing = [o.path for o in stage.outs if o.path not in result.outs]
            if missing:
                raise PipelineError(
                    f"stage '{stage.name}' finished but did not write its declared output "
                    f"'{missing[0]}'",
                    stage=stage.name,
                    hint="fix the command, or remove the path from the stage's outs",
                )
            outcome.outs = dict(result.outs)
            self.restore(stage, outcome)
            return
        for out in stage.outs:
            if not (self.root / out.path).exists():
                raise PipelineError(
                    f"stage '{stage.name}' finished but did not write its declared output "
                    f"'{out.path}'",
                    stage=stage.name,
                    hint="fix the command, or remove the path from the stage's outs",
                )
        outcome.metrics = self._read_metrics(stage)
        for out in stage.outs:
            outcome.outs[out.path] = self._cache_output(out.path) if out.cache else None

    def _cache_output(self, rel: str) -> str:
        path = self.root / rel
        store = self.project.artifacts
        if path.is_dir():
            with self._mutex:
                _, entries = self.stat.tree(path)
            ref = store.put_dir(path, entries)
        else:
            oid = self._oid(rel)
            assert oid is not None
            ref = store.put_file(path, oid)
        return ref.oid

    def _read_metrics(self, stage: Stage) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        for out in stage.outs:
            if out.kind == "metric":
                metrics.update(read_metrics_file(self.root / out.path, stage.name, out.path))
        return metrics

    def record(self, stage: Stage, outcome: StageOutcome) -> None:
        """After a stage succeeds, write its entry to ``shipyard.lock``."""
        if self.options.dry:
            return
        if outcome.status in (RAN, RESTORED, UP_TO_DATE) and outcome.fingerprint:
            entry = LockEntry(
                outcome.fingerprint,
                list(stage.commands),
                outcome.deps,
                outcome.params,
                outcome.outs,
            )
            self.lock.update(stage.name, entry, keep=list(self.spec.stages))

    def record_run(self, status: str) -> None:
        """Store the run and every stage's outcome, when the run did anything at all."""
        outcomes = list(self.outcomes.values())
        if self.options.dry or not any(o.status in (RAN, RESTORED, FAILED) for o in outcomes):
            return
        run_id = self._ensure_run()
        self._create_run_record()
        metadata = self.project.metadata
        with metadata.transaction() as conn:
            for o in outcomes:
                metadata.record_stage_run(run_id, _stage_row(o), conn=conn)
            metadata.finish_run(
                run_id,
                status,
                metrics={k: v for o in outcomes for k, v in o.metrics.items()},
                params={k: v for o in outcomes for k, v in o.params.items()},
                message=self.options.message,
                conn=conn,
            )


def _stage_row(o: StageOutcome) -> dict[str, Any]:
    return {
        "stage": o.name,
        "status": o.status,
        "fingerprint": o.fingerprint or "",
        "reason": o.reason,
        "started_at": o.started_at,
        "ended_at": o.ended_at,
        "exit_code": o.exit_code,
        "deps": o.deps,
        "outs": o.outs,
        "params": o.params,
        "metrics": o.metrics,
        "resources": o.resources,
        "log_oid": o.log_oid,
        "log_tail": "\n".join(o.log_tail) or None,
    }


def _why_changed(entry: LockEntry | None, outcome: StageOutcome, stage: Stage) -> str:
    if entry is None:
        return "never ran"
    if entry.cmd != list(stage.commands):
        return "command changed"
    for path, oid in outcome.deps.items():
        if entry.deps.get(path) != oid:
            return (
                f"dependency '{path}' changed" if path in entry.deps else f"new dependency '{path}'"
            )
    for path in entry.deps:
        if path not in outcome.deps:
            return f"dependency '{path}' removed"
    for key, value in outcome.params.items():
        if key not in entry.params:
            return f"new param '{key}'"
        if entry.params[key] != value:
            return f"param '{key}' changed: {entry.params[key]!r} -> {value!r}"
    if set(entry.params) != set(outcome.params):
        return "params removed"
    return "outputs or environment changed"


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def read_metrics_file(path: Path, stage: str, rel: str) -> dict[str, Any]:
    """Flatten a JSON/YAML metrics file to dotted keys; malformed files are errors."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except FileNotFoundError:
        raise PipelineError(
            f"stage '{stage}' did not write its metrics file '{rel}'", stage=stage
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PipelineError(
            f"stage '{stage}' wrote a malformed metrics file '{rel}': {str(exc).splitlines()[0]}",
            stage=stage,
            hint="metrics files must be a JSON (or YAML) object of numbers",
        ) from None
    except Exception as exc:  # YAML parser errors
        raise PipelineError(
            f"stage '{stage}' wrote a malformed metrics file '{rel}': {exc}", stage=stage
        ) from None
    if not isinstance(data, dict):
        raise PipelineError(
            f"stage '{stage}': metrics file '{rel}' must hold an object, not {type(data).__name__}",
            stage=stage,
        )
    return _flatten(data)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, int | float | str | bool) or value is None:
            flat[name] = value
    return flat


def _now() -> datetime:
    return datetime.now(UTC)


def _status_line(console: Console, outcome: StageOutcome) -> None:
    symbol = {
        UP_TO_DATE: "=",
        RAN: "✓",
        RESTORED: "↺",
        FAILED: "✗",
        SKIPPED: "-",
        WOULD_RUN: "?",
    }.get(outcome.status, " ")
    extra = f" ({outcome.duration:.1f}s)" if outcome.duration is not None else ""
    why = f": {outcome.reason}" if outcome.reason else ""
    console.line(f"{symbol} {outcome.name}: {outcome.status}{extra}{why}")


def _process(run: _Run, stage: Stage, outcome: StageOutcome) -> None:
    """Decide and act on one stage; every failure ends up in ``outcome``."""
    outcome.started_at = _now()
    try:
        action = run.decide(stage, outcome)
        if action == UP_TO_DATE:
            outcome.status = UP_TO_DATE
        elif run.options.dry:
            outcome.status = WOULD_RUN
            if action == "restore":
                outcome.reason += " -> would restore from cache"
        elif action == "restore":
            run.restore(stage, outcome)
            outcome.status = RESTORED
        else:
            run.console.line(f"▶ {stage.name}: running ({outcome.reason})")
            result = run.execute(stage, outcome)
            if run.cancel.is_set():
                outcome.status, outcome.reason = FAILED, "interrupted"
            elif result.exit_code != 0:
                outcome.status = FAILED
                outcome.reason = _failure_reason(stage, result)
            else:
                run.collect_outputs(stage, outcome, result)
                outcome.status = RAN
    except ShipyardError as exc:
        outcome.status = FAILED
        outcome.reason = str(exc)
    outcome.ended_at = _now()
    run.record(stage, outcome)


def _failure_reason(stage: Stage, result: ExecResult) -> str:
    if result.exit_code == 127:
        return f"command not found (exit 127): {result.log_tail[-1] if result.log_tail else ''}"
    if result.exit_code < 0:
        return f"killed by signal {-result.exit_code}"
    return f"command exited with code {result.exit_code}"


def run_pipeline(
    project: Project,
    options: RunOptions = RunOptions(),
    *,
    executor: Executor | None = None,
    console: Console | None = None,
) -> RunReport:
    """Run (or with ``dry``, explain) the project's pipeline under the project lock."""
    from shipyard.pipeline.lock import project_lock

    selected = plan_selection(project, options)
    console = console or Console()
    run = _Run(project, options, executor or LocalExecutor(), console)
    # A dry run changes nothing, so it need not wait for (or block) a running pipeline.
    guard = contextlib.nullcontext() if options.dry else project_lock(project.state_dir)
    with guard:
        try:
            status = _schedule(run, selected, max(1, options.jobs))
        except KeyboardInterrupt:
            run.record_run("interrupted")
            raise
        finally:
            run.stat.close()
        run.record_run(status)
    return RunReport(run.run_id, status, [run.outcomes[s] for s in selected])


def pipeline_status(project: Project) -> RunReport:
    """Which stages are out of date and why, changing nothing (``shipyard status``)."""
    return run_pipeline(project, RunOptions(dry=True), console=Console(quiet=True))


def _schedule(run: _Run, selected: list[str], jobs: int) -> str:
    spec = run.spec
    pending = list(selected)
    chosen = set(selected)
    running: dict[Future[None], str] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="stage") as pool:
        try:
            while pending or running:
                for name in _ready(pending, run, spec.graph.upstream, chosen):
                    if len(running) >= jobs:
                        break
                    pending.remove(name)
                    outcome = run.outcomes[name]
                    ups = _ups(run, name)
                    if any(run.outcomes[u].status in (FAILED, SKIPPED) for u in ups):
                        outcome.status, outcome.reason = SKIPPED, "an upstream stage failed"
                        _status_line(run.console, outcome)
                        continue
                    first = next((u for u in ups if run.outcomes[u].status == WOULD_RUN), None)
                    if first is not None:  # --dry: its inputs are not known yet
                        outcome.status, outcome.reason = WOULD_RUN, f"upstream '{first}' would run"
                        _status_line(run.console, outcome)
                        continue
                    running[pool.submit(_process, run, spec.stages[name], outcome)] = name
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
                    _status_line(run.console, run.outcomes[running.pop(future)])
        except KeyboardInterrupt:
            run.cancel.set()  # executors stop their commands; wait for them to do so
            for future in running:
                future.result()
            for name in pending:
                run.outcomes[name].status, run.outcomes[name].reason = SKIPPED, "interrupted"
            raise
    statuses = {o.status for o in run.outcomes.values()}
    if FAILED in statuses or SKIPPED in statuses:
        return "failed"
    if run.options.dry:
        return "dry"
    return "succeeded" if statuses & {RAN, RESTORED} else "up-to-date"


def _ups(run: _Run, name: str) -> Iterable[str]:
    return [u for u in run.spec.graph.upstream[name] if u in run.outcomes]


def _ready(pending: list[str], run: _Run, upstream: Any, chosen: set[str]) -> list[str]:
    for name in pending:
        run.outcomes.setdefault(name, StageOutcome(name))
    terminal = {UP_TO_DATE, RAN, RESTORED, FAILED, SKIPPED, WOULD_RUN}
    return [
        name
        for name in pending
        if all(run.outcomes[u].status in terminal for u in upstream[name] if u in chosen)
    ]
