"""Stage fingerprints: what decides whether a cached stage result may be reused.

A fingerprint covers exactly the inputs that can change a stage's outputs: its
commands, working directory, the content ids of its dependencies, its parameters'
values, its declared environment and the output paths it promises. Changing any of
them changes the fingerprint; nothing else (timestamps, resources, order of keys) does.
Golden values are pinned in the tests, so a change here is always deliberate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FINGERPRINT_VERSION", "stage_fingerprint"]

FINGERPRINT_VERSION = 1


def stage_fingerprint(
    *,
    commands: Sequence[str],
    wdir: str,
    deps: Mapping[str, str],
    params: Mapping[str, Any],
    env: Mapping[str, str],
    outs: Sequence[str],
) -> str:
    """A hex digest identifying one stage invocation."""
    body = json.dumps(
        {
            "v": FINGERPRINT_VERSION,
            "cmd": list(commands),
            "wdir": wdir,
            "deps": dict(sorted(deps.items())),
            "params": params,
            "env": dict(sorted(env.items())),
            "outs": sorted(outs),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.blake2b(body.encode(), digest_size=32).hexdigest()
