"""Entry point that runs one ``@shipyard.stage`` function: ``FILE:QUALNAME [PARAM...]``.

The file is loaded under a private module name, so its ``if __name__ == "__main__"``
block (which usually starts the pipeline) does not run again inside the stage.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any


def _load(file: str, qualname: str) -> Any:
    spec = importlib.util.spec_from_file_location("_shipyard_stage_module", Path(file).absolute())
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load stage file {file!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(Path(file).absolute().parent))
    spec.loader.exec_module(module)
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _params(keys: list[str]) -> dict[str, Any]:
    if not keys:
        return {}
    import yaml

    from shipyard.pipeline.params import lookup_param

    data = yaml.safe_load(Path("params.yaml").read_text())
    return {key: lookup_param(data, key) for key in keys}


def main(argv: list[str]) -> None:
    if not argv or ":" not in argv[0]:
        raise SystemExit("usage: python -m shipyard.pipeline.function_stage FILE:NAME [PARAM...]")
    file, qualname = argv[0].rsplit(":", 1)
    func = _load(file, qualname)
    if "params" in inspect.signature(func).parameters:
        func(params=_params(argv[1:]))
    else:
        func()


if __name__ == "__main__":
    main(sys.argv[1:])
