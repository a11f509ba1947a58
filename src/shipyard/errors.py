"""The one exception hierarchy of Shipyard.

::

    ShipyardError                  exit code 3 unless a subclass says otherwise
    ├── UsageError                 exit 2: a command line that cannot be obeyed
    ├── ConfigError                exit 2: shipyard.yaml (or another file) is invalid
    ├── StoreError                 exit 3: metadata or artifact store problems
    │   ├── SchemaVersionError     exit 2: database written by a newer Shipyard
    │   ├── ArtifactNotFound       exit 3
    │   ├── ArtifactCorrupt        exit 3: content no longer matches its hash
    │   └── UnsafePath             exit 2: a name that would leave the store
    ├── PipelineError              exit 3: a stage could not run or lied about outputs
    │   └── LockHeld               exit 3: another process holds the project lock
    ├── RegistryError              exit 3
    │   ├── PolicyViolation        exit 1: governance refuses the change
    │   ├── Conflict               exit 1: a compare-and-set lost a race (HTTP 409)
    │   ├── NotFound               exit 2: no such model, version or alias
    │   └── UnsafeModel            exit 2: a format that could execute code on load
    ├── CheckFailed                exit 1: a gate or check failed
    ├── ServingError               exit 3
    └── MonitorError               exit 3

Every error carries a message that says what happened, quotes the offending value and
says what to do next; extra context lives on attributes so callers need not parse text.
Exit codes are only *used* by the CLI; the HTTP mapping lives in ``serving``.
"""

from __future__ import annotations

__all__ = [
    "ArtifactCorrupt",
    "ArtifactNotFound",
    "CheckFailed",
    "ConfigError",
    "Conflict",
    "LockHeld",
    "MonitorError",
    "NotFound",
    "PipelineError",
    "PolicyViolation",
    "RegistryError",
    "SchemaVersionError",
    "ServingError",
    "ShipyardError",
    "StoreError",
    "UnsafeModel",
    "UnsafePath",
    "UsageError",
]


class ShipyardError(Exception):
    """Base class of every error Shipyard raises on purpose."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(ShipyardError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class ConfigError(ShipyardError):
    """A configuration file is missing or invalid.

    ``problems`` lists every problem found as ``(key_path, message)`` pairs so a user
    fixes them all in one pass instead of one per run.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        problems: list[tuple[str, str]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.message]
        lines += [f"  - {key}: {msg}" if key else f"  - {msg}" for key, msg in self.problems]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class StoreError(ShipyardError):
    """The metadata or artifact store failed or refused an operation."""


class SchemaVersionError(StoreError):
    """The database was written by a newer Shipyard than this one."""

    exit_code = 2


class ArtifactNotFound(StoreError):
    """No object with the requested hash is in the artifact store."""

    def __init__(self, digest: str, *, store: str, hint: str | None = None) -> None:
        super().__init__(f"artifact {digest} is not in the store at {store}", hint=hint)
        self.digest = digest
        self.store = store


class ArtifactCorrupt(StoreError):
    """An object's content no longer matches the hash it is stored under."""

    def __init__(self, digest: str, actual: str, *, store: str) -> None:
        super().__init__(
            f"artifact {digest} in {store} is corrupt: its content hashes to {actual}",
            hint="delete the object and push it again from a good copy "
            "(`shipyard data push`), or re-run the stage that produced it",
        )
        self.digest = digest
        self.actual = actual


class UnsafePath(StoreError):
    """A user-supplied name would resolve outside the place it must stay in."""

    exit_code = 2


class PipelineError(ShipyardError):
    """A stage could not run, failed, or did not produce what it declared."""

    def __init__(self, message: str, *, stage: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.stage = stage


class LockHeld(PipelineError):
    """Another Shipyard process holds the project's lock."""


class RegistryError(ShipyardError):
    """The model registry refused or failed an operation."""


class PolicyViolation(RegistryError):
    """Governance policy forbids the requested change."""

    exit_code = 1


class Conflict(RegistryError):
    """Another writer changed the state first (an alias moved, a version was taken)."""

    exit_code = 1


class NotFound(RegistryError):
    """No model, version or alias with that name."""

    exit_code = 2


class UnsafeModel(RegistryError):
    """The model file could run code when loaded (pickle) or holds untrusted types."""

    exit_code = 2


class CheckFailed(ShipyardError):
    """One or more gates failed; the CLI exits 1."""

    exit_code = 1


class ServingError(ShipyardError):
    """The serving gateway could not answer."""


class MonitorError(ShipyardError):
    """Monitoring could not compute or deliver a result."""
