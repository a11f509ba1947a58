"""An OpenFeature provider over Shipyard's flags, so applications evaluate exactly the
flags the gateway routes by. Needs the ``openfeature-sdk`` package.

::

    from openfeature import api
    from shipyard.serving.openfeature import ShipyardProvider

    api.set_provider(ShipyardProvider.from_store("sqlite:///.shipyard/shipyard.db"))
    api.get_client().get_boolean_value("new-checkout", False, EvaluationContext("user-1"))

Evaluation is local (the same pure function as the gateway) over flags read from the
metadata store and refreshed when their change token moves.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider
from openfeature.provider.metadata import Metadata

from shipyard.core.flags import Flag, evaluate
from shipyard.serving.control import ControlPlane

__all__ = ["ShipyardProvider"]


class ShipyardProvider(AbstractProvider):
    def __init__(self, control: ControlPlane, *, refresh_seconds: float = 1.0) -> None:
        super().__init__()
        self.control = control
        self.refresh_seconds = refresh_seconds
        self._flags: dict[str, Flag] = {}
        self._token = -1
        self._checked = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_store(cls, db_url: str, **kwargs: Any) -> ShipyardProvider:
        from shipyard.store import open_metadata

        return cls(ControlPlane(open_metadata(db_url)), **kwargs)

    def get_metadata(self) -> Metadata:
        return Metadata(name="shipyard")

    def _current(self) -> dict[str, Flag]:
        now = time.monotonic()
        if now - self._checked >= self.refresh_seconds:
            with self._lock:
                token = self.control.change_token()
                if token != self._token:
                    snapshot = self.control.snapshot()
                    self._flags, self._token = snapshot.flags, snapshot.revision
                self._checked = now
        return self._flags

    def _resolve(
        self, key: str, default: Any, context: EvaluationContext | None, kind: tuple[type, ...]
    ) -> FlagResolutionDetails[Any]:
        flag = self._current().get(key)
        if flag is None:
            return FlagResolutionDetails(
                default, ErrorCode.FLAG_NOT_FOUND, f"no flag named '{key}'", Reason.ERROR
            )
        attributes = {str(k): str(v) for k, v in (context.attributes if context else {}).items()}
        result = evaluate(flag, attributes, context.targeting_key if context else None)
        value = result.value
        if not isinstance(value, kind) or (bool not in kind and isinstance(value, bool)):
            return FlagResolutionDetails(
                default,
                ErrorCode.TYPE_MISMATCH,
                f"flag '{key}' variant '{result.variant}' is {type(value).__name__}",
                Reason.ERROR,
            )
        return FlagResolutionDetails(value, reason=Reason(result.reason), variant=result.variant)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, (bool,))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, (str,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, (int,))

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, (float, int))

    def resolve_object_details(
        self, flag_key: str, default_value: Any, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[Any]:
        return self._resolve(flag_key, default_value, evaluation_context, (dict, list))
