"""Importing MLflow model folders: flavors, signatures, pickle refusal, bad input.

The folders are written here the way MLflow writes them (an ``MLmodel`` YAML with
``flavors``, ``signature``, ``run_id``, ``utc_time_created`` and ``model_uuid``), so
MLflow need not be installed; one test also imports folders written by MLflow itself
when its venv exists at /tmp/anchors/mlflow.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from shipyard.cli.main import main
from shipyard.errors import NotFound, RegistryError, UnsafeModel, UnsafePath, UsageError
from shipyard.formats import load_model
from shipyard.registry.mlflow_import import convert_signature, import_mlflow

MLFLOW_PYTHON = Path(os.environ.get("SHIPYARD_BENCH_ANCHORS", "/tmp/anchors")) / "mlflow/bin/python"
COLUMNS = json.dumps([{"type": "double", "name": n, "required": True} for n in "abc"])
LONG_OUTPUT = '[{"type": "long", "required": true}]'


def training_data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    labels = (features["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    return features, labels


def fitted_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(*training_data())


def write_mlmodel(folder: Path, flavors: dict, *, inputs=COLUMNS, outputs=LONG_OUTPUT) -> Path:
    meta = {
        "flavors": flavors,
        "run_id": "4f0c2a9e8b7d4c1a",
        "utc_time_created": "2025-03-04 10:11:12.131415",
        "model_uuid": "9d2b8e5f6a1c4e3b",
    }
    if inputs is not None:
        meta["signature"] = {"inputs": inputs, "outputs": outputs, "params": None}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(yaml.safe_dump(meta))
    (folder / "requirements.txt").write_text("scikit-learn\n")
    return folder


def onnx_folder(folder: Path) -> Path:
    import onnx
    from skl2onnx import to_onnx

    features, _ = training_data()
    folder.mkdir(parents=True)
    onnx.save_model(
        to_onnx(fitted_model(), features.to_numpy(np.float32)[:1]), folder / "model.onnx"
    )
    return write_mlmodel(
        folder,
        {
            "onnx": {"data": "model.onnx", "onnx_version": onnx.__version__, "code": None},
            "python_function": {"loader_module": "mlflow.onnx", "data": "model.onnx"},
        },
    )


def sklearn_folder(folder: Path, content: bytes, fmt: str = "cloudpickle", **kw) -> Path:
    name = "model.skops" if fmt == "skops" else "model.pkl"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(content)
    return write_mlmodel(
        folder,
        {
            "sklearn": {"pickled_model": name, "serialization_format": fmt, "code": None},
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": name},
        },
        **kw,
    )


def stored_predictions(registry, version, tmp_path: Path):
    dest = registry.artifacts.get(version.oid, tmp_path / f"restored-{version.version}")
    loaded = load_model(dest, version.format, trust_pickle=version.trusted_pickle)
    assert loaded.signature == version.signature  # signature.json travels with the model
    return loaded.predict(training_data()[0])


# --- ONNX -------------------------------------------------------------------------------
def test_onnx_model_is_registered_with_its_signature_and_run(registry, tmp_path):
    version = import_mlflow(registry, onnx_folder(tmp_path / "m"), "credit", actor="alice")
    assert version.format == "onnx" and not version.trusted_pickle
    assert version.signature == {"inputs": ["a", "b", "c"], "types": dict.fromkeys("abc", "number")}
    assert version.tags["source"] == "mlflow"
    assert version.tags["mlflow_run_id"] == "4f0c2a9e8b7d4c1a"
    assert version.tags["mlflow_flavor"] == "onnx"
    expected = fitted_model().predict(training_data()[0])
    assert (stored_predictions(registry, version, tmp_path) == expected).all()
    assert [e.action for e in registry.metadata.events()] == ["model.register"]


def linear_onnx_folder(folder: Path) -> Path:
    """y = X @ [1, 2, 3] + 0.5 with its weights in initializers, saved as external data."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.array([[1], [2], [3]], np.float32), "weights")
    bias = numpy_helper.from_array(np.array([0.5], np.float32), "bias")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "weights"], ["z"]),
            helper.make_node("Add", ["z", "bias"], ["y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True)
    onnx.save_model(
        model,
        folder / "model.onnx",
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    return write_mlmodel(folder, {"onnx": {"data": "model.onnx"}})


def test_onnx_external_data_comes_along(registry, tmp_path):
    version = import_mlflow(registry, linear_onnx_folder(tmp_path / "m"), "credit", actor="alice")
    assert {e.path for e in registry.artifacts.manifest(version.oid)} == {
        "model.onnx",
        "weights.bin",
        "signature.json",
    }
    features = training_data()[0].to_numpy(np.float32)
    expected = features @ np.array([[1], [2], [3]], np.float32) + 0.5
    assert np.allclose(stored_predictions(registry, version, tmp_path), expected)


def test_onnx_external_data_outside_the_folder_is_refused(registry, tmp_path):
    import onnx

    folder = linear_onnx_folder(tmp_path / "m")
    (tmp_path / "secret.bin").write_bytes((folder / "weights.bin").read_bytes())
    model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../secret.bin"
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(UnsafePath, match=r"'\.\./secret\.bin', which leads outside"):
        import_mlflow(registry, folder, "credit", actor="alice")
    with pytest.raises(NotFound):
        registry.versions("credit")


# --- pickles ----------------------------------------------------------------------------
def test_a_crafted_pickle_is_refused_and_never_runs(registry, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Exploit())
    honest = sklearn_folder(tmp_path / "cloudpickle", payload)
    lying = sklearn_folder(tmp_path / "claims-skops", payload, fmt="skops")  # bytes decide
    for folder in (honest, lying):
        with pytest.raises(
            UnsafeModel, match=r"'model\.(pkl|skops)' in the MLflow model is a pickle"
        ):
            import_mlflow(registry, folder, "credit", actor="alice")
    assert not marker.exists()
    assert registry.metadata.events() == []
    with pytest.raises(NotFound):
        registry.versions("credit")


def test_a_trusted_sklearn_pickle_is_stored_as_skops(registry, tmp_path):
    import cloudpickle

    folder = sklearn_folder(tmp_path / "m", cloudpickle.dumps(fitted_model()))
    version = import_mlflow(registry, folder, "credit", actor="alice", trust_pickle=True)
    assert (version.format, version.trusted_pickle) == ("sklearn", False)
    assert version.tags["converted_from"] == "pickle"
    expected = fitted_model().predict(training_data()[0])
    assert (stored_predictions(registry, version, tmp_path) == expected).all()
    events = [(e.action, e.subject) for e in registry.metadata.events()]
    assert events == [("model.trust_override", "credit"), ("model.register", "credit:1")]


def test_keep_pickle_stores_the_pickle_and_audits_it(registry, tmp_path):
    folder = sklearn_folder(tmp_path / "m", pickle.dumps(fitted_model()), fmt="pickle")
    version = import_mlflow(
        registry, folder, "credit", actor="alice", trust_pickle=True, keep_pickle=True
    )
    assert (version.format, version.trusted_pickle) == ("pickle", True)
    assert "converted_from" not in version.tags
    assert [e.action for e in registry.metadata.events()] == [
        "model.register",
        "model.trust_override",
    ]
    with pytest.raises(UsageError, match="--keep-pickle only applies together with"):
        import_mlflow(registry, folder, "credit", actor="alice", keep_pickle=True)


def test_only_scikit_learn_pickles_are_converted(registry, tmp_path):
    folder = sklearn_folder(tmp_path / "m", pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(RegistryError, match=r"holds a builtins.dict, not a scikit-learn") as info:
        import_mlflow(registry, folder, "credit", actor="alice", trust_pickle=True)
    assert "--keep-pickle" in str(info.value)


def test_a_tensor_signature_takes_the_estimators_column_names(registry, tmp_path):
    tensor = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]'
    folder = sklearn_folder(tmp_path / "m", pickle.dumps(fitted_model()), inputs=tensor)
    version = import_mlflow(registry, folder, "credit", actor="alice", trust_pickle=True)
    assert version.signature["inputs"] == ["a", "b", "c"]


def test_an_mlflow_skops_model_is_stored_as_it_is(registry, tmp_path):
    import skops.io as sio

    folder = sklearn_folder(tmp_path / "m", sio.dumps(fitted_model()), fmt="skops")
    version = import_mlflow(registry, folder, "credit", actor="alice")
    assert (version.format, version.trusted_pickle) == ("sklearn", False)
    assert "converted_from" not in version.tags
    expected = fitted_model().predict(training_data()[0])
    assert (stored_predictions(registry, version, tmp_path) == expected).all()


def native_booster(kind: str, folder: Path, named: bool = False) -> tuple[Path, object]:
    """A tiny booster saved the way mlflow.xgboost / mlflow.lightgbm save one, trained on
    a DataFrame (``named``: the booster keeps the column names) or on a plain array."""
    frame, labels = training_data()
    features = frame if named else frame.to_numpy()
    folder.mkdir(parents=True)
    if kind == "xgboost":
        import xgboost

        booster = xgboost.train(
            {"objective": "binary:logistic"}, xgboost.DMatrix(features, labels), 5
        )
        file = "model.ubj"
        booster.save_model(folder / file)
        expected = (booster.predict(xgboost.DMatrix(features)) > 0.5).astype(int)
    else:
        import lightgbm

        params = {"objective": "binary", "verbose": -1, "num_leaves": 4}
        booster = lightgbm.train(params, lightgbm.Dataset(features, labels), 5)
        file = "model.lgb"
        booster.save_model(folder / file)
        expected = (booster.predict(features) > 0.5).astype(int)
    write_mlmodel(folder, {kind: {"data": file, "code": None}})
    return folder, expected


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_native_tree_models_are_stored_as_they_are(registry, tmp_path, kind):
    folder, expected = native_booster(kind, tmp_path / "m")
    version = import_mlflow(registry, folder, "credit", actor="alice")
    assert (version.format, version.tags["mlflow_flavor"]) == (kind, kind)
    assert (stored_predictions(registry, version, tmp_path) == expected).all()


def test_an_xgboost_model_trained_on_a_dataframe_predicts(registry, tmp_path):
    # MLflow's xgboost models are usually trained on DataFrames, so the booster checks
    # feature names: the loader must pass the columns, not a bare array.
    folder, expected = native_booster("xgboost", tmp_path / "m", named=True)
    version = import_mlflow(registry, folder, "credit", actor="alice")
    assert (stored_predictions(registry, version, tmp_path) == expected).all()


def test_a_python_function_flavor_alone_finds_the_sklearn_file(registry, tmp_path):
    import skops.io as sio

    folder = tmp_path / "m"
    folder.mkdir()
    sio.dump(fitted_model(), folder / "model.skops")
    flavors = {"python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.skops"}}
    version = import_mlflow(registry, write_mlmodel(folder, flavors), "credit", actor="alice")
    assert (version.format, version.tags["mlflow_flavor"]) == ("sklearn", "python_function")


# --- bad input --------------------------------------------------------------------------
def test_a_folder_without_mlmodel_is_a_usage_error(registry, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="has no MLmodel file: not an MLflow model folder"):
        import_mlflow(registry, tmp_path / "empty", "credit", actor="alice")
    with pytest.raises(UsageError, match="is not a folder"):
        import_mlflow(registry, tmp_path / "missing", "credit", actor="alice")


@pytest.mark.parametrize(
    ("flavors", "message"),
    [
        ({"pytorch": {"model_data": "data"}}, r"flavor\(s\) \['pytorch'\], none of which"),
        (
            {"python_function": {"loader_module": "mlflow.pyfunc.model", "python_model": "p"}},
            "loader_module 'mlflow.pyfunc.model', which only MLflow can load",
        ),
        ({"onnx": {"data": "nothing.onnx"}}, "names 'nothing.onnx', which is not a file"),
        ({"onnx": {}}, r"'flavors.onnx.data' must name the model file, not None"),
        ({"onnx": "model.onnx"}, "'flavors.onnx' must be a mapping"),
    ],
)
def test_unusable_flavors_are_refused_clearly(registry, tmp_path, flavors, message):
    folder = write_mlmodel(tmp_path / "m", flavors)
    with pytest.raises(RegistryError, match=message):
        import_mlflow(registry, folder, "credit", actor="alice")


@pytest.mark.parametrize("reference", ["../outside.onnx", "/etc/hostname", "sub/../../x.onnx"])
def test_file_references_leaving_the_folder_are_refused(registry, tmp_path, reference):
    (tmp_path / "outside.onnx").write_bytes(b"x")
    folder = write_mlmodel(tmp_path / "m", {"onnx": {"data": reference}})
    with pytest.raises(UnsafePath, match="leads outside the model folder"):
        import_mlflow(registry, folder, "credit", actor="alice")


def test_a_malformed_signature_is_refused_before_any_model_loads(registry, tmp_path):
    folder = onnx_folder(tmp_path / "m")
    write_mlmodel(folder, {"onnx": {"data": "model.onnx"}}, inputs='[{"type": "double", "name"')
    with pytest.raises(RegistryError, match=r"'signature\.inputs' is not valid JSON"):
        import_mlflow(registry, folder, "credit", actor="alice")


def test_mlmodel_yaml_is_loaded_safely(registry, tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "MLmodel").write_text(f"flavors: !!python/object/apply:os.system ['touch {marker}']")
    with pytest.raises(RegistryError, match="is not valid YAML"):
        import_mlflow(registry, folder, "credit", actor="alice")
    assert not marker.exists()
    (folder / "MLmodel").write_text("flavors: [onnx")
    with pytest.raises(RegistryError, match="is not valid YAML"):
        import_mlflow(registry, folder, "credit", actor="alice")
    (folder / "MLmodel").write_text("signature: {}\n")
    with pytest.raises(RegistryError, match="has no 'flavors' mapping"):
        import_mlflow(registry, folder, "credit", actor="alice")


# --- signature conversion (pure) --------------------------------------------------------
def spec(*columns: dict) -> dict:
    return {"inputs": json.dumps(list(columns)), "outputs": LONG_OUTPUT}


def test_column_types_become_numbers_and_strings():
    block = spec(
        {"type": "double", "name": "x"},
        {"type": "float", "name": "f"},
        {"type": "long", "name": "n"},
        {"type": "integer", "name": "i"},
        {"type": "string", "name": "s"},
    )
    block["outputs"] = '[{"type": "long", "name": "default", "required": true}]'
    signature, notes = convert_signature(block)
    assert signature == {
        "inputs": ["x", "f", "n", "i", "s"],
        "types": {"x": "number", "f": "number", "n": "number", "i": "number", "s": "string"},
        "output": "default",
    }
    assert notes == []


def test_booleans_and_optional_columns_are_called_out():
    signature, notes = convert_signature(
        spec(
            {"type": "boolean", "name": "flag"}, {"type": "double", "name": "x", "required": False}
        )
    )
    assert signature["types"] == {"flag": "number", "x": "number"}
    assert notes == [
        "boolean column(s) ['flag'] are numbers here: send 0/1",
        "column(s) ['x'] are optional in MLflow but required here",
    ]


def test_a_numeric_tensor_becomes_numbered_columns():
    tensor = {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}
    signature, _ = convert_signature(spec(tensor))
    assert signature == {
        "inputs": ["f0", "f1", "f2", "f3"],
        "types": dict.fromkeys(["f0", "f1", "f2", "f3"], "number"),
    }


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([{"type": "datetime", "name": "when"}], "'when' has MLflow type 'datetime'"),
        ([{"type": "array", "items": {"type": "double"}, "name": "v"}], "type 'array'"),
        ([{"type": "double", "name": "x"}, {"type": "string", "name": "x"}], "names .* twice"),
        (
            [{"type": "tensor", "tensor-spec": {"dtype": "object", "shape": [-1, 2]}}],
            "dtype 'object'",
        ),
        ([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}], r"\[-1\]"),
        (
            [
                {"type": "tensor", "name": "a", "tensor-spec": {"dtype": "float64", "shape": [-1]}},
                {"type": "tensor", "name": "b", "tensor-spec": {"dtype": "float64", "shape": [-1]}},
            ],
            "2 input tensors",
        ),
        ([], "non-empty list"),
    ],
)
def test_signatures_shipyard_cannot_serve_are_refused(inputs, message):
    with pytest.raises(RegistryError, match=message):
        convert_signature(spec(*inputs))


def test_a_missing_signature_is_noted():
    assert convert_signature(None) == ({}, ["the MLflow model has no signature"])
    with pytest.raises(RegistryError, match="must be a mapping with 'inputs'"):
        convert_signature("inputs: x")


# --- CLI --------------------------------------------------------------------------------
def test_cli_imports_and_refuses_with_exit_codes(tmp_path, monkeypatch, capsys):
    import cloudpickle

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    folder = onnx_folder(tmp_path / "onnx-model")
    assert main(["import", "mlflow", str(folder), "credit", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["format"], shown["tags"]["source"]) == (1, "onnx", "mlflow")

    pickled = sklearn_folder(tmp_path / "pickled", cloudpickle.dumps(fitted_model()))
    assert main(["import", "mlflow", str(pickled), "credit"]) == 2
    assert "is a pickle" in capsys.readouterr().err
    assert main(["import", "mlflow", str(pickled), "credit", "--trust-pickle"]) == 0
    assert "converted from pickle to skops" in capsys.readouterr().err
    assert main(["import", "mlflow", str(tmp_path / "nope"), "credit"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["import"])
    assert info.value.code == 2


# --- folders written by MLflow itself ---------------------------------------------------
MLFLOW_SCRIPT = """
import json, sys
import numpy as np, pandas as pd
import mlflow.sklearn
from mlflow.models import Model
from sklearn.linear_model import LogisticRegression

out = sys.argv[1]
rng = np.random.default_rng(0)
features = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
model = LogisticRegression().fit(features, (features["a"] > 0).astype(int))
for fmt in ("skops", "cloudpickle"):
    mlflow.sklearn.save_model(
        model, f"{out}/{fmt}", serialization_format=fmt, input_example=features.head(3),
        mlflow_model=Model(run_id=f"run-{fmt}"), pip_requirements=["scikit-learn"],
    )
features.to_json(f"{out}/features.json", orient="split")
json.dump(model.predict(features).tolist(), open(f"{out}/expected.json", "w"))
"""


@pytest.mark.skipif(not MLFLOW_PYTHON.exists(), reason=f"no MLflow venv at {MLFLOW_PYTHON}")
def test_folders_written_by_mlflow_import(registry, tmp_path):
    subprocess.run(
        [str(MLFLOW_PYTHON), "-c", MLFLOW_SCRIPT, str(tmp_path)],
        check=True,
        capture_output=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"file://{tmp_path / 'mlruns'}"},
    )
    features = pd.read_json(tmp_path / "features.json", orient="split")
    expected = json.loads((tmp_path / "expected.json").read_text())
    with pytest.raises(UnsafeModel):
        import_mlflow(registry, tmp_path / "cloudpickle", "credit", actor="alice")
    for fmt, trust in (("skops", False), ("cloudpickle", True)):
        version = import_mlflow(
            registry, tmp_path / fmt, "credit", actor="alice", trust_pickle=trust
        )
        assert version.format == "sklearn" and version.tags["mlflow_run_id"] == f"run-{fmt}"
        assert version.signature == {
            "inputs": ["a", "b", "c"],
            "types": dict.fromkeys("abc", "number"),
        }
        dest = registry.artifacts.get(version.oid, tmp_path / f"restored-{fmt}")
        assert load_model(dest).predict(features).tolist() == expected


# --- MetadataStore.search_runs, which bench/registry_vs_mlflow.py compares with MLflow ----
# (a store contract test: it belongs in tests/store/test_metadata.py)
def test_search_runs_filters_on_a_metric_in_the_database(metadata_url):
    from shipyard.errors import StoreError
    from shipyard.store import open_metadata

    with open_metadata(metadata_url) as store:
        for run_id, project, metrics in [
            ("r0", "p", {"auc": 0.2}),
            ("r1", "p", {"auc": 0.5, "loss": 3}),
            ("r2", "p", {"auc": 0.9}),
            ("r3", "p", {"loss": 1}),
            ("o1", "other", {"auc": 0.99}),
        ]:
            store.create_run(project, run_id=run_id, params={"seed": 1})
            store.finish_run(run_id, "succeeded", metrics=metrics)

        def found(*query):
            return sorted(run.id for run in store.search_runs(*query))

        assert found("p", "auc", ">", 0.5) == ["r2"]
        assert found("p", "auc", ">=", 0.5) == ["r1", "r2"]
        assert found("p", "auc", "=", 0.2) == ["r0"]
        assert found("p", "auc", "!=", 0.2) == ["r1", "r2"]
        assert found(None, "auc", ">", 0.5) == ["o1", "r2"]
        assert found("p", "loss", "<", 2) == ["r3"]
        assert store.search_runs("p", "auc", ">", 0.5)[0].metrics == {"auc": 0.9}
        with pytest.raises(StoreError, match="unknown comparison '=>'"):
            store.search_runs("p", "auc", "=>", 0.5)
