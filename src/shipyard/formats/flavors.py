"""Loaders for each format. Each SDK is imported inside its loader."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.errors import RegistryError, UnsafeModel

__all__ = ["LOADERS", "TRUSTED_SKOPS_PREFIXES", "untrusted_skops_types"]

# skops already trusts scikit-learn's estimators; these are the extra types Shipyard
# accepts on top. Anything else in a .skops file is refused, never loaded.
TRUSTED_SKOPS_PREFIXES = ("sklearn.",)
_TRUSTED_SKOPS_TYPES = {
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.float32",
    "numpy.int64",
    "numpy.int32",
    "numpy.bool_",
    "collections.OrderedDict",
    "collections.defaultdict",
}


def _as_array(frame: Any) -> Any:
    import numpy as np

    values = frame.to_numpy() if hasattr(frame, "to_numpy") else frame
    return np.asarray(values)


def untrusted_skops_types(file: Path) -> list[str]:
    """Types in a skops file that neither skops nor Shipyard trusts."""
    import skops.io as sio

    return [
        t
        for t in sio.get_untrusted_types(file=file)
        if not t.startswith(TRUSTED_SKOPS_PREFIXES) and t not in _TRUSTED_SKOPS_TYPES
    ]


class _Sklearn:
    def __init__(self, file: Path) -> None:
        import skops.io as sio

        refused = untrusted_skops_types(file)
        if refused:
            raise UnsafeModel(
                f"'{file.name}' contains types Shipyard does not trust: {refused}",
                hint="save only scikit-learn objects in the model, or convert it to ONNX",
            )
        try:
            self.model = sio.load(file, trusted=sio.get_untrusted_types(file=file))
        except Exception as exc:  # skops raises many kinds on a damaged file
            raise RegistryError(f"cannot load '{file.name}' with skops: {exc}") from None

    def predict(self, frame: Any) -> Any:
        return self.model.predict(frame)

    def predict_proba(self, frame: Any) -> Any | None:
        if hasattr(self.model, "predict_proba"):
            return self.model.predict_proba(frame)
        return None


class _Onnx:
    def __init__(self, file: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        self.label = outputs[0]
        self.proba = outputs[1] if len(outputs) > 1 else None

    def _feed(self, frame: Any) -> dict[str, Any]:
        import numpy as np

        if len(self.inputs) == 1:
            return {self.inputs[0].name: _as_array(frame).astype(np.float32)}
        feed = {}
        for spec in self.inputs:  # one input per column (skl2onnx with column transformers)
            column = frame[spec.name].to_numpy().reshape(-1, 1)
            kind = (
                np.float32 if "float" in spec.type else (np.int64 if "int" in spec.type else object)
            )
            feed[spec.name] = column.astype(kind) if kind is not object else column.astype(str)
        return feed

    def predict(self, frame: Any) -> Any:
        return self.session.run([self.label], self._feed(frame))[0]

    def predict_proba(self, frame: Any) -> Any | None:
        import numpy as np

        if self.proba is None:
            return None
        result = self.session.run([self.proba], self._feed(frame))[0]
        if isinstance(result, list):  # ZipMap output: a list of {class: probability}
            keys = sorted(result[0])
            return np.array([[row[k] for k in keys] for row in result])
        return np.asarray(result)


class _XGBoost:
    def __init__(self, file: Path) -> None:
        import xgboost

        self.booster = xgboost.Booster()
        self.booster.load_model(str(file))
        objective = json.loads(self.booster.save_config())["learner"]["objective"]["name"]
        self.classifier = objective.startswith(("binary:", "multi:"))

    def _raw(self, frame: Any) -> Any:
        import xgboost

        # A booster trained on a DataFrame checks feature names: keep them when we have them.
        data = frame if hasattr(frame, "columns") else _as_array(frame)
        return self.booster.predict(xgboost.DMatrix(data))

    def predict(self, frame: Any) -> Any:

        raw = self._raw(frame)
        if not self.classifier:
            return raw
        return raw.argmax(axis=1) if raw.ndim == 2 else (raw > 0.5).astype(int)

    def predict_proba(self, frame: Any) -> Any | None:
        import numpy as np

        if not self.classifier:
            return None
        raw = self._raw(frame)
        return raw if raw.ndim == 2 else np.column_stack([1 - raw, raw])


class _LightGBM:
    def __init__(self, file: Path) -> None:
        import lightgbm

        self.booster = lightgbm.Booster(model_file=str(file))
        objective = self.booster.dump_model().get("objective", "")
        self.classifier = objective.startswith(("binary", "multiclass"))

    def predict(self, frame: Any) -> Any:
        raw = self.booster.predict(_as_array(frame))
        if not self.classifier:
            return raw
        return raw.argmax(axis=1) if raw.ndim == 2 else (raw > 0.5).astype(int)

    def predict_proba(self, frame: Any) -> Any | None:
        import numpy as np

        if not self.classifier:
            return None
        raw = self.booster.predict(_as_array(frame))
        return raw if raw.ndim == 2 else np.column_stack([1 - raw, raw])


class _Torch:
    """TorchScript (``torch.jit.load``), or safetensors weights plus a declared class."""

    def __init__(self, file: Path) -> None:
        import torch

        if file.suffix == ".safetensors":
            self.module = _safetensors_module(file)
        else:
            self.module = torch.jit.load(str(file), map_location="cpu")
        self.module.eval()

    def _forward(self, frame: Any) -> Any:
        import torch

        with torch.no_grad():
            tensor = torch.as_tensor(_as_array(frame), dtype=torch.float32)
            return self.module(tensor).numpy()

    def predict(self, frame: Any) -> Any:
        out = self._forward(frame)
        return out.argmax(axis=1) if out.ndim == 2 and out.shape[1] > 1 else out.ravel()

    def predict_proba(self, frame: Any) -> Any | None:
        import numpy as np

        out = self._forward(frame)
        if out.ndim != 2 or out.shape[1] < 2:
            return None
        exp = np.exp(out - out.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def _safetensors_module(file: Path) -> Any:
    """Weights from safetensors into the class named in signature.json's ``module``."""
    from safetensors.torch import load_file

    signature = json.loads((file.parent / "signature.json").read_text())
    target = signature.get("module")
    if not target or ":" not in target:
        raise RegistryError(
            f"'{file.name}' holds weights only: signature.json must name the class as "
            "'module': 'package.module:ClassName' (with 'module_kwargs' if needed)"
        )
    module_name, class_name = target.split(":", 1)
    cls = getattr(importlib.import_module(module_name), class_name)
    module = cls(**signature.get("module_kwargs", {}))
    module.load_state_dict(load_file(str(file)))
    return module


class _PyFunc:
    """A folder with ``model.py`` defining ``load(folder)`` that returns the model."""

    def __init__(self, file: Path) -> None:
        name = f"_shipyard_pyfunc_{abs(hash(str(file)))}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise RegistryError(f"cannot import '{file}'")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if not hasattr(module, "load"):
            raise RegistryError(f"'{file}' must define load(folder) returning the model")
        self.model = module.load(file.parent)

    def predict(self, frame: Any) -> Any:
        return self.model.predict(frame)

    def predict_proba(self, frame: Any) -> Any | None:
        if hasattr(self.model, "predict_proba"):
            return self.model.predict_proba(frame)
        return None


class _Pickle:
    """Only reached with an explicit, audited trust override."""

    def __init__(self, file: Path) -> None:
        if file.suffix == ".joblib":
            import joblib

            self.model = joblib.load(file)
        else:
            import pickle

            with open(file, "rb") as handle:
                self.model = pickle.load(handle)

    def predict(self, frame: Any) -> Any:
        return self.model.predict(frame)

    def predict_proba(self, frame: Any) -> Any | None:
        return self.model.predict_proba(frame) if hasattr(self.model, "predict_proba") else None


LOADERS: dict[str, Callable[[Path], Any]] = {
    "sklearn": _Sklearn,
    "onnx": _Onnx,
    "xgboost": _XGBoost,
    "lightgbm": _LightGBM,
    "torchscript": _Torch,
    "safetensors": _Torch,
    "pyfunc": _PyFunc,
    "pickle": _Pickle,
}
