"""Import a model version from an MLflow model folder (the one holding an ``MLmodel``).

The ``MLmodel`` file is read with ``yaml.safe_load``; the first flavor Shipyard can
store safely is picked, its model file is copied into a clean staging folder next to a
``signature.json`` converted from MLflow's signature, and the registry registers that
folder like any other model (load check, content hash, audit entry in one transaction).

Flavors, in this order: ``onnx`` (with its external-data files, which must lie inside
the model folder), ``xgboost`` and ``lightgbm`` native files, ``sklearn`` saved with
skops, and ``sklearn`` / ``python_function`` (``loader_module: mlflow.sklearn``) saved
with pickle or cloudpickle. Whatever the ``MLmodel`` says, the file's bytes decide
whether it is a pickle. A pickle is refused unless ``trust_pickle``; with it, a
scikit-learn model is loaded once, written with skops and registered in that safe form
(the load is audited as ``model.trust_override`` before it happens), or, with
``keep_pickle``, registered as format ``pickle`` (the registry audits that).

Signatures: MLflow's double, float, long and integer columns become ``number`` and
string columns ``string``. A boolean column also becomes ``number``, because serving
accepts only numbers and strings: clients send 0/1, which scikit-learn treats like
False/True. That, and MLflow columns marked optional (Shipyard requires every input),
is written to the version's ``signature_note`` tag. One 2-D numeric tensor becomes the
columns ``f0..f(n-1)`` (or the converted estimator's ``feature_names_in_``). Other
types (binary, datetime, arrays, objects, several tensors) are refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from shipyard.errors import RegistryError, UnsafeModel, UnsafePath, UsageError
from shipyard.formats import is_pickle

if TYPE_CHECKING:
    from shipyard.registry.service import Registry, Version

__all__ = ["SUPPORTED_FLAVORS", "Source", "convert_signature", "import_mlflow", "read_mlmodel"]

SUPPORTED_FLAVORS = ("onnx", "xgboost", "lightgbm", "sklearn", "python_function")
_MLMODEL_MAX_BYTES = 1 << 20
_FILE_KEY = {"onnx": "data", "xgboost": "data", "lightgbm": "data", "sklearn": "pickled_model"}
_PYFUNC_LOADERS = {
    "mlflow.sklearn": ("sklearn", "model_path"),
    "mlflow.onnx": ("onnx", "data"),
    "mlflow.xgboost": ("xgboost", "data"),
    "mlflow.lightgbm": ("lightgbm", "data"),
}
_COLUMN_TYPES = {
    "double": "number",
    "float": "number",
    "long": "number",
    "integer": "number",
    "boolean": "number",  # see the module docstring: serving takes 0/1, not true/false
    "string": "string",
}
_TENSOR_PREFIXES = ("float", "int", "uint", "bool")
_TAGS = {
    "run_id": "mlflow_run_id",
    "model_uuid": "mlflow_model_uuid",
    "model_id": "mlflow_model_id",
    "utc_time_created": "mlflow_created",
    "mlflow_version": "mlflow_version",
}


@dataclass(frozen=True)
class Source:
    """The model file an MLflow flavor points at, and the Shipyard format it is in."""

    flavor: str
    file: Path
    format: str


def import_mlflow(
    registry: Registry,
    path: str | Path,
    name: str,
    *,
    actor: str,
    trust_pickle: bool = False,
    keep_pickle: bool = False,
) -> Version:
    """Register the model in MLflow folder ``path`` as the next version of ``name``.

    Raises UsageError for a path that is not an MLflow model folder, RegistryError for a
    malformed ``MLmodel``, an unsupported flavor or signature, UnsafePath for a file
    reference that leaves the folder, and UnsafeModel for a pickle without
    ``trust_pickle``.
    """
    if keep_pickle and not trust_pickle:
        raise UsageError("--keep-pickle only applies together with --trust-pickle")
    folder, meta = read_mlmodel(path)
    source = pick_source(folder, meta["flavors"])
    signature, notes = convert_signature(meta.get("signature"))  # refuse before loading
    registry.users.require(actor, "register")
    with tempfile.TemporaryDirectory(prefix="shipyard-mlflow-") as tmp:
        staging = Path(tmp)
        fmt, names = _stage(registry, source, staging, name, actor, trust_pickle, keep_pickle)
        if names:
            signature, notes = convert_signature(meta.get("signature"), tensor_names=names)
        if signature:
            (staging / "signature.json").write_text(json.dumps(signature))
        return registry.register(
            name,
            staging,
            actor=actor,
            fmt=fmt,
            trust_pickle=fmt == "pickle",
            tags=_tags(meta, source, fmt, notes),
            signature=signature,
            description=f"imported from the MLflow model at {folder}",
        )


def read_mlmodel(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The model folder and its parsed ``MLmodel`` (``path`` may name either)."""
    path = Path(path)
    folder = path.parent if path.name == "MLmodel" and path.is_file() else path
    hint = "pass the folder MLflow wrote with save_model or log_model (it holds 'MLmodel')"
    if not folder.is_dir():
        raise UsageError(f"'{path}' is not a folder", hint=hint)
    file = folder / "MLmodel"
    if not file.is_file():
        raise UsageError(f"'{folder}' has no MLmodel file: not an MLflow model folder", hint=hint)
    if file.stat().st_size > _MLMODEL_MAX_BYTES:
        raise RegistryError(f"'{file}' is over {_MLMODEL_MAX_BYTES} bytes: not an MLmodel file")
    try:
        meta = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(f"'{file}' is not valid YAML: {first}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("flavors"), dict):
        raise RegistryError(
            f"'{file}' has no 'flavors' mapping",
            hint="an MLmodel file lists the flavors the model was saved in under 'flavors:'",
        )
    return folder, meta


def pick_source(folder: Path, flavors: dict[str, Any]) -> Source:
    """The first supported flavor's model file, checked to lie inside ``folder``."""
    for flavor in SUPPORTED_FLAVORS:
        if flavor in flavors:
            return _source(folder, flavor, flavors[flavor])
    raise RegistryError(
        f"the MLflow model has flavor(s) {sorted(flavors)}, none of which Shipyard imports",
        hint=f"supported: {', '.join(SUPPORTED_FLAVORS)} (scikit-learn models only); "
        "export the model to ONNX and save it with mlflow.onnx",
    )


def _source(folder: Path, flavor: str, conf: Any) -> Source:
    if not isinstance(conf, dict):
        raise RegistryError(f"MLmodel: 'flavors.{flavor}' must be a mapping, not {conf!r}")
    if flavor == "python_function":
        loader = conf.get("loader_module")
        if loader not in _PYFUNC_LOADERS:
            raise RegistryError(
                f"the MLflow model is a python_function with loader_module {loader!r}, "
                "which only MLflow can load (it runs the model's own code)",
                hint="save the model with mlflow.sklearn, mlflow.onnx, mlflow.xgboost or "
                "mlflow.lightgbm, or export it to ONNX",
            )
        kind, key = _PYFUNC_LOADERS[loader]
    else:
        kind, key = flavor, _FILE_KEY[flavor]
    file = _inside(folder, conf.get(key), f"flavors.{flavor}.{key}")
    if is_pickle(file) or conf.get("serialization_format") in ("pickle", "cloudpickle"):
        return Source(flavor, file, "pickle")
    if conf.get("serialization_format") == "skops":
        kind = "sklearn"  # skops also holds lightgbm's scikit-learn wrappers
    return Source(flavor, file, kind)


def _inside(folder: Path, relative: Any, key: str) -> Path:
    """``folder/relative`` as a real path, refused if it leaves ``folder``."""
    if not isinstance(relative, str) or not relative:
        raise RegistryError(f"MLmodel: '{key}' must name the model file, not {relative!r}")
    parts = PurePosixPath(relative).parts
    root = folder.resolve()
    file = (root / relative).resolve()
    if PurePosixPath(relative).is_absolute() or ".." in parts or not file.is_relative_to(root):
        raise UnsafePath(
            f"MLmodel: '{key}' is {relative!r}, which leads outside the model folder '{folder}'",
            hint="an MLflow model refers only to files inside its own folder",
        )
    if not file.is_file():
        raise RegistryError(f"MLmodel: '{key}' names {relative!r}, which is not a file")
    return file


# --- signatures ------------------------------------------------------------------------
def convert_signature(
    block: Any, *, tensor_names: list[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """MLflow's ``signature:`` block -> (Shipyard signature, notes for the user).

    ``tensor_names`` names the columns of a tensor signature when they are known (e.g.
    the estimator's ``feature_names_in_``); otherwise they are ``f0..f(n-1)``.
    """
    if block is None:
        return {}, ["the MLflow model has no signature"]
    if not isinstance(block, dict) or "inputs" not in block:
        raise RegistryError(f"MLmodel: 'signature' must be a mapping with 'inputs', not {block!r}")
    specs = _spec_list(block["inputs"], "inputs")
    if any(spec.get("type") == "tensor" for spec in specs):
        inputs, types, notes = _tensor_columns(specs, tensor_names)
    else:
        inputs, types, notes = _named_columns(specs)
    signature: dict[str, Any] = {"inputs": inputs, "types": types}
    outputs = _spec_list(block.get("outputs"), "outputs") if block.get("outputs") else []
    if len(outputs) == 1 and isinstance(outputs[0].get("name"), str):
        signature["output"] = outputs[0]["name"]
    return signature, notes


def _spec_list(value: Any, key: str) -> list[dict[str, Any]]:
    """MLflow stores each side of a signature as a JSON string of a list of specs."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise RegistryError(f"MLmodel: 'signature.{key}' is not valid JSON ({exc})") from None
    if not isinstance(value, list) or not all(isinstance(s, dict) for s in value) or not value:
        raise RegistryError(
            f"MLmodel: 'signature.{key}' must be a non-empty list of column or tensor specs, "
            f"not {value!r}"[:300]
        )
    return value


def _named_columns(specs: list[dict[str, Any]]) -> tuple[list[str], dict[str, str], list[str]]:
    inputs: list[str] = []
    types: dict[str, str] = {}
    booleans, optional = [], []
    for index, spec in enumerate(specs):
        name = spec.get("name")
        name = name if isinstance(name, str) and name else f"f{index}"
        kind = _COLUMN_TYPES.get(spec.get("type"))  # type: ignore[arg-type]
        if kind is None:
            raise RegistryError(
                f"MLmodel: input column {name!r} has MLflow type {spec.get('type')!r}, which "
                "Shipyard cannot serve",
                hint="Shipyard signatures take numbers and strings; convert the column "
                "(e.g. a datetime to a number) before training",
            )
        if name in types:
            raise RegistryError(f"MLmodel: the signature names input column {name!r} twice")
        inputs.append(name)
        types[name] = kind
        booleans += [name] if spec.get("type") == "boolean" else []
        optional += [name] if spec.get("required") is False else []
    notes = []
    if booleans:
        notes.append(f"boolean column(s) {booleans} are numbers here: send 0/1")
    if optional:
        notes.append(f"column(s) {optional} are optional in MLflow but required here")
    return inputs, types, notes


def _tensor_columns(
    specs: list[dict[str, Any]], names: list[str] | None
) -> tuple[list[str], dict[str, str], list[str]]:
    tensor = specs[0].get("tensor-spec")
    if len(specs) != 1 or not isinstance(tensor, dict):
        raise RegistryError(
            f"MLmodel: the signature has {len(specs)} input tensors; Shipyard imports a "
            "single 2-D tensor or named columns",
            hint="log the model with a pandas DataFrame input example so MLflow records columns",
        )
    dtype, shape = str(tensor.get("dtype")), tensor.get("shape")
    if not dtype.startswith(_TENSOR_PREFIXES):
        raise RegistryError(
            f"MLmodel: the input tensor has dtype {dtype!r}; Shipyard imports numeric tensors",
            hint="log the model with a pandas DataFrame input example so MLflow records columns",
        )
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int)):
        raise RegistryError(f"MLmodel: the input tensor has shape {shape!r}, not [-1, width]")
    width = shape[1]
    if width < 1:
        raise RegistryError(f"MLmodel: the input tensor's width is {width}, not a fixed number")
    inputs = list(names) if names and len(names) == width else [f"f{i}" for i in range(width)]
    notes = [f"tensor input of width {width}: columns named {inputs[0]}..{inputs[-1]}"]
    return inputs, dict.fromkeys(inputs, "number"), notes


# --- staging ---------------------------------------------------------------------------
def _stage(
    registry: Registry,
    source: Source,
    staging: Path,
    name: str,
    actor: str,
    trust_pickle: bool,
    keep_pickle: bool,
) -> tuple[str, list[str] | None]:
    """Put the model file into ``staging``; return its format and any column names."""
    if source.format == "onnx":
        _copy_onnx(source.file, staging)
    elif source.format != "pickle":
        shutil.copyfile(source.file, staging / source.file.name)
    elif not trust_pickle:
        raise UnsafeModel(
            f"'{source.file.name}' in the MLflow model is a pickle: loading it can run "
            "arbitrary code, so Shipyard refuses it",
            hint="save the model with mlflow.sklearn.save_model(..., "
            "serialization_format='skops'); or, if you trust whoever wrote the file, pass "
            "--trust-pickle to convert a scikit-learn model to skops (audited), with "
            "--keep-pickle to store the pickle itself",
        )
    elif keep_pickle:
        shutil.copyfile(source.file, staging / "model.pkl")
    else:
        return "sklearn", _convert_to_skops(registry, source.file, staging, name, actor)
    return source.format, None


def _copy_onnx(file: Path, staging: Path) -> None:
    """Copy an ONNX model and its external-data files, each checked to stay beside it."""
    try:
        import onnx
    except ImportError:
        raise RegistryError(
            "importing an ONNX model needs the onnx package (to check its external data)",
            hint="pip install onnx",
        ) from None
    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # protobuf raises several kinds on a damaged file
        raise RegistryError(f"'{file.name}' is not a valid ONNX model: {exc}") from None
    for location in sorted(_external_locations(model.graph)):
        data = _inside(file.parent, location, f"external data of {file.name}")
        (staging / location).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data, staging / location)
    shutil.copyfile(file, staging / file.name)


def _external_locations(graph: Any) -> set[str]:
    from onnx import TensorProto

    return {
        entry.value
        for tensor in _tensors(graph)
        if tensor.data_location == TensorProto.EXTERNAL
        for entry in tensor.external_data
        if entry.key == "location"
    }


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of a graph, its sparse initializers and its subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def _convert_to_skops(
    registry: Registry, file: Path, staging: Path, name: str, actor: str
) -> list[str] | None:
    """Load a trusted scikit-learn pickle and write it as ``model.skops``.

    The trust override is audited before the pickle is loaded, so the record exists
    even if loading it does something it should not.
    """
    from shipyard.formats.flavors import untrusted_skops_types
    from shipyard.store.hashing import hash_file

    why = "MLflow pickle loaded with --trust-pickle to convert it to skops"
    details = {"file": str(file), "content": hash_file(file), "why": why}
    registry.metadata.append_event(actor, "model.trust_override", name, details)
    estimator = _load_trusted_pickle(file)
    kind = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    if not kind.startswith("sklearn."):
        raise RegistryError(
            f"'{file.name}' holds a {kind}, not a scikit-learn estimator, so it cannot be "
            "converted to skops",
            hint="pass --keep-pickle to register the pickle as it is, or export it to ONNX",
        )
    import skops.io as sio

    sio.dump(estimator, staging / "model.skops")
    refused = untrusted_skops_types(staging / "model.skops")
    if refused:
        raise RegistryError(
            f"the converted model holds types Shipyard does not trust: {refused}",
            hint="pass --keep-pickle to register the pickle as it is, or export it to ONNX",
        )
    names = getattr(estimator, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def _load_trusted_pickle(file: Path) -> Any:
    """Only reached with ``trust_pickle``: unpickling runs whatever the file says."""
    import pickle

    try:
        with open(file, "rb") as handle:
            return pickle.load(handle)
    except Exception as exc:  # unpickling runs arbitrary code: anything can come out
        raise RegistryError(f"cannot load the pickle '{file.name}': {exc}") from None


def _tags(meta: dict[str, Any], source: Source, fmt: str, notes: list[str]) -> dict[str, str]:
    tags = {"source": "mlflow", "mlflow_flavor": source.flavor}
    tags.update({tag: str(meta[key]) for key, tag in _TAGS.items() if meta.get(key)})
    if source.format == "pickle" and fmt != "pickle":
        tags["converted_from"] = "pickle"
    if notes:
        tags["signature_note"] = "; ".join(notes)
    return tags
