"""Model formats ("flavors"): one load/predict interface over safe file formats.

Safe formats first: scikit-learn through skops (with Shipyard's own list of trusted
types), ONNX, XGBoost and LightGBM native files, TorchScript and safetensors, and a
Python-function flavor for code the user owns. A pickle (``.pkl``, ``.joblib``, a
``torch.save`` file) can run arbitrary code when loaded, so it is refused on every load
path unless the caller passes ``trust_pickle=True``; the registry audits that choice.

A model artifact is a single file or a folder holding one model file and, optionally,
``signature.json`` (``{"inputs": [...], "output": "..."}``).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shipyard.errors import RegistryError, UnsafeModel

__all__ = [
    "FORMATS",
    "LoadedModel",
    "Model",
    "detect_format",
    "is_pickle",
    "load_model",
    "read_signature",
]

FORMATS = (
    "sklearn",
    "onnx",
    "xgboost",
    "lightgbm",
    "torchscript",
    "safetensors",
    "pyfunc",
    "pickle",
)
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".sav", ".pt", ".pth", ".bin"}
_EXTRAS = {"onnx": "onnx", "xgboost": "xgboost", "lightgbm": "lightgbm"}


class Model(Protocol):
    """What every flavor offers once loaded."""

    def predict(self, frame: Any) -> Any: ...

    def predict_proba(self, frame: Any) -> Any | None: ...


@dataclass
class LoadedModel:
    """A loaded model with its format, signature and the file it came from."""

    format: str
    model: Model
    path: Path
    signature: dict[str, Any] = field(default_factory=dict)
    # An equivalent model over 2-D float arrays in signature order (a compiled linear
    # model), when one exists: it skips DataFrame construction and library dispatch.
    array_model: Any | None = None

    @property
    def inputs(self) -> list[str]:
        return [i if isinstance(i, str) else i["name"] for i in self.signature.get("inputs", [])]

    def predict(self, frame: Any) -> Any:
        return self.model.predict(self._columns(frame))

    def predict_proba(self, frame: Any) -> Any | None:
        return self.model.predict_proba(self._columns(frame))

    def _columns(self, frame: Any) -> Any:
        names = self.inputs
        if names and hasattr(frame, "columns"):
            missing = [n for n in names if n not in frame.columns]
            if missing:
                raise RegistryError(
                    f"input is missing column(s) {missing}; the model expects {names}"
                )
            return frame[names]
        return frame


def is_pickle(path: Path) -> bool:
    """True for a pickle stream, or a zip archive that holds one (``torch.save``)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if head[:2] == b"PK" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        has_pickle = any(n.endswith(".pkl") for n in names)
        is_torchscript = any("/code/" in n for n in names)
        return has_pickle and not is_torchscript
    return False


def _model_file(path: Path) -> Path:
    if path.is_file():
        return path
    candidates = [
        p
        for p in sorted(path.iterdir())
        if p.is_file() and p.name != "signature.json" and not p.name.startswith(".")
    ]
    if (path / "model.py").exists():
        return path / "model.py"
    if len(candidates) == 1:
        return candidates[0]
    for suffix in (".skops", ".onnx", ".ubj", ".safetensors", ".pt", ".ts", ".json", ".txt"):
        found = [p for p in candidates if p.suffix == suffix]
        if len(found) == 1:
            return found[0]
    raise RegistryError(
        f"cannot tell which file in '{path}' is the model ({[p.name for p in candidates]})",
        hint="pass the model file itself, or keep one model file per folder",
    )


def detect_format(path: str | Path) -> str:
    """Guess the format from the file's name and first bytes."""
    file = _model_file(Path(path))
    suffix = file.suffix.lower()
    if file.name == "model.py":
        return "pyfunc"
    if suffix == ".skops":
        return "sklearn"
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".safetensors":
        return "safetensors"
    if suffix == ".ubj":
        return "xgboost"
    if is_pickle(file) or suffix in {".pkl", ".pickle", ".joblib", ".sav"}:
        return "pickle"
    if suffix in {".pt", ".ts", ".pth"}:
        return "torchscript"
    head = file.read_bytes()[:4096]
    if suffix == ".json" and b'"learner"' in head:
        return "xgboost"
    if head.startswith(b"tree\n") or b"\nversion=v" in head[:200]:
        return "lightgbm"
    raise RegistryError(
        f"unknown model format for '{file.name}'",
        hint=f"pass --format, one of: {', '.join(FORMATS)}",
    )


def read_signature(path: Path) -> dict[str, Any]:
    folder = path if path.is_dir() else path.parent
    sig = folder / "signature.json"
    if not sig.exists():
        return {}
    try:
        data = json.loads(sig.read_text())
    except ValueError as exc:
        raise RegistryError(f"'{sig}' is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"'{sig}' must hold an object with 'inputs' and 'output'")
    return data


def load_model(
    path: str | Path, fmt: str | None = None, *, trust_pickle: bool = False
) -> LoadedModel:
    """Load a model artifact (file or folder) with its flavor.

    Raises UnsafeModel for a pickle unless ``trust_pickle``, and for a skops file that
    contains types outside Shipyard's trusted list.
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise RegistryError(f"unknown format {fmt!r}", hint=f"one of: {', '.join(FORMATS)}")
    file = _model_file(path)
    if fmt != "pickle" and fmt != "pyfunc" and is_pickle(file):
        fmt = "pickle"  # the bytes decide, not the name the file was given
    if fmt == "pickle" and not trust_pickle:
        raise UnsafeModel(
            f"'{file.name}' is a pickle: loading it can run arbitrary code, so Shipyard refuses it",
            hint="save the model in a safe format (scikit-learn: skops.io.dump; or ONNX, "
            "XGBoost/LightGBM native files, safetensors); if you wrote this file yourself "
            "and accept the risk, register it with --trust-pickle (recorded in the audit log)",
        )
    from shipyard.formats import flavors

    try:
        model = flavors.LOADERS[fmt](file)
    except ImportError as exc:
        raise RegistryError(
            f"the {fmt} format needs a package that is not installed ({exc.name})",
            hint=f"pip install 'shipyard-ml[{_EXTRAS.get(fmt, fmt)}]'",
        ) from None
    signature = read_signature(path)
    return LoadedModel(fmt, model, file, signature, _array_model(fmt, model, signature))


def _array_model(fmt: str, model: Any, signature: dict[str, Any]) -> Any | None:
    """A compiled twin of a linear scikit-learn model whose inputs are all numbers."""
    inputs = signature.get("inputs") or []
    types = signature.get("types") or {}
    if fmt != "sklearn" or not inputs or any(types.get(n) != "number" for n in inputs):
        return None
    from shipyard.formats.linear import compile_linear

    return compile_linear(model.model, len(inputs))
