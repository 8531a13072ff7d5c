"""Every way a model file can be wrong gives one clear ModelError; good files round-trip."""

import copy
import json
import zipfile

import numpy as np
import pytest
from conftest import CNN_SPEC, MLP_SPEC, random_arrays

from nnviz_blender.core import modelfile
from nnviz_blender.core.modelfile import ModelError, load_model, save_model


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    save_model(path, CNN_SPEC, random_arrays(CNN_SPEC))
    return path


def write_npz(path, spec, arrays):
    np.savez(path, spec=np.array(json.dumps(spec)), **arrays)
    return path


def test_round_trip(good):
    model = load_model(good)
    assert model.input_shape == (1, 32, 32)
    assert [layer.out_shape for layer in model.layers][:3] == [(6, 28, 28)] * 2 + [(6, 14, 14)]
    assert model.output_shape == (10,)
    assert model.labels == [str(i) for i in range(10)]
    assert model.parameter_count == 6 * 26 + 16 * 151 + 120 * 401 + 100 * 121 + 10 * 101
    w = model.layers[0].weight
    assert w.dtype == np.float32 and w.flags.c_contiguous and w.shape == (6, 1, 5, 5)


def expect(path, fragment):
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert fragment in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    expect(tmp_path / "nope.npz", "not found")


def test_not_an_npz(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("hello")
    expect(path, "not an .npz")


def test_truncated_zip(tmp_path, good):
    data = good.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: len(data) // 2] + data[-200:])  # keeps the central directory
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert (
        "corrupt" in str(info.value)
        or "truncated" in str(info.value)
        or "not an" in str(info.value)
    )


def test_corrupt_member(tmp_path, good):
    path = tmp_path / "flip.npz"
    data = bytearray(good.read_bytes())
    data[200:260] = bytes(60)  # zero out part of a compressed member
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError):
        load_model(path)


def test_missing_spec(tmp_path):
    path = tmp_path / "nospec.npz"
    np.savez(path, w=np.zeros(3))
    expect(path, "no 'spec'")


def test_malformed_spec(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, spec=np.array("{not json"))
    expect(path, "not valid JSON")


def test_unknown_layer(tmp_path):
    spec = copy.deepcopy(MLP_SPEC)
    spec["layers"][2] = {"type": "gelu"}
    expect(
        write_npz(tmp_path / "m.npz", spec, random_arrays(MLP_SPEC)), "unknown layer type 'gelu'"
    )


def test_missing_array(tmp_path):
    arrays = random_arrays(MLP_SPEC)
    del arrays["layers.3.weight"]
    expect(write_npz(tmp_path / "m.npz", MLP_SPEC, arrays), "missing array 'layers.3.weight'")


def test_wrong_array_shape(tmp_path):
    arrays = random_arrays(MLP_SPEC)
    arrays["layers.3.weight"] = arrays["layers.3.weight"].T
    expect(write_npz(tmp_path / "m.npz", MLP_SPEC, arrays), "shape [300, 100], expected [100, 300]")


def test_shapes_do_not_chain(tmp_path):
    spec = copy.deepcopy(MLP_SPEC)
    spec["layers"][3]["in_features"] = 200
    expect(
        write_npz(tmp_path / "m.npz", spec, random_arrays(MLP_SPEC)),
        "expects 200 inputs but the previous layer gives 300",
    )


def test_conv_on_flat_input(tmp_path):
    spec = {
        "input_shape": [10],
        "layers": [{"type": "conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3}],
    }
    expect(write_npz(tmp_path / "m.npz", spec, {}), "needs a (C, H, W) input")


def test_nan_weights(tmp_path):
    arrays = random_arrays(MLP_SPEC)
    arrays["layers.1.bias"][5] = np.nan
    expect(write_npz(tmp_path / "m.npz", MLP_SPEC, arrays), "NaN or Inf")


def test_pickled_object_array(tmp_path):
    path = tmp_path / "evil.npz"
    arrays = random_arrays(MLP_SPEC)
    arrays["layers.1.bias"] = np.array([object()] * 300, dtype=object)
    np.savez(path, spec=np.array(json.dumps(MLP_SPEC)), **arrays)
    expect(path, "pickled object array")


def test_too_large(tmp_path, monkeypatch):
    path = write_npz(tmp_path / "m.npz", MLP_SPEC, random_arrays(MLP_SPEC))
    monkeypatch.setattr(modelfile, "MAX_PARAMETERS", 1000)
    expect(path, "network too large")


def test_too_many_neurons(tmp_path):
    spec = {"input_shape": [1, 4000, 4000], "layers": [{"type": "relu"}]}
    expect(write_npz(tmp_path / "m.npz", spec, {}), "network too large")


def test_newer_version(tmp_path):
    spec = dict(MLP_SPEC, version=99)
    expect(write_npz(tmp_path / "m.npz", spec, random_arrays(MLP_SPEC)), "newer than this add-on")


def test_labels_must_match_outputs(tmp_path):
    spec = dict(MLP_SPEC, labels=["a", "b"])
    expect(write_npz(tmp_path / "m.npz", spec, random_arrays(MLP_SPEC)), "2 labels for 10 outputs")


def test_pool_window_too_large(tmp_path):
    spec = {"input_shape": [1, 3, 3], "layers": [{"type": "maxpool2d", "kernel_size": 4}]}
    expect(write_npz(tmp_path / "m.npz", spec, {}), "does not fit an input of size 3")


def test_save_refuses_invalid(tmp_path):
    with pytest.raises(ModelError):
        save_model(tmp_path / "x.npz", {"input_shape": [3], "layers": []}, {})
    assert not (tmp_path / "x.npz").exists()


def test_loads_without_pickle(good, monkeypatch):
    seen = {}
    real_load = np.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    load_model(good)
    assert seen.get("allow_pickle") is False
    assert zipfile.is_zipfile(good)


# --- version 2: graphs ------------------------------------------------------------------------

GRAPH_SPEC = {
    "version": 2,
    "input_shape": [3, 8, 8],
    "output": "logits",
    "preprocess": {"kind": "image", "mean": [0.5, 0.5, 0.5], "std": 0.25},
    "layers": [
        {
            "type": "conv2d",
            "name": "stem",
            "in_channels": 3,
            "out_channels": 4,
            "kernel_size": 3,
            "padding": [1, 1, 1, 1],
        },
        {"type": "relu", "name": "a"},
        {
            "type": "conv2d",
            "name": "dw",
            "in_channels": 4,
            "out_channels": 4,
            "kernel_size": 3,
            "padding": [2, 1, 2, 1],
            "dilation": [2, 1],
            "groups": 4,
        },
        {"type": "affine", "name": "bn"},
        {"type": "add", "name": "res", "inputs": ["bn", "a"]},
        {"type": "concat", "name": "cat", "inputs": ["res", "input"]},
        {"type": "global_avgpool", "name": "gap"},
        {"type": "flatten", "name": "flat"},
        {"type": "dense", "name": "fc", "in_features": 7, "out_features": 5},
    ],
}


def test_graph_round_trip(tmp_path):
    model = save_model(tmp_path / "g.npz", GRAPH_SPEC, random_arrays(GRAPH_SPEC))
    loaded = load_model(tmp_path / "g.npz")
    assert [layer.inputs for layer in loaded.layers][3:6] == [(3,), (4, 2), (5, 0)]
    assert loaded.layers[5].out_shape == (7, 8, 8) and loaded.output_shape == (5,)
    assert loaded.layers[2].weight.shape == (4, 1, 3, 3)
    assert loaded.layers[2].params["pads"] == [2, 1, 2, 1]
    assert loaded.output_kind == "logits" and loaded.channels == 3 and not loaded.is_sequential
    assert model.spec == loaded.spec


@pytest.mark.parametrize(
    "change,fragment",
    [
        (lambda s: s["layers"][4].update(inputs=["bn", "nowhere"]), "'nowhere' is not the model"),
        (lambda s: s["layers"][4].update(inputs=["bn", "fc"]), "'fc' is not the model input or an"),
        (
            lambda s: s["layers"][4].update(inputs=["bn", "input"]),
            "needs two or more inputs of one",
        ),
        (lambda s: s["layers"][5].update(inputs=["res"]), "differ only in channels"),
        (lambda s: s["layers"][2].update(groups=3), "3 groups must divide 4 input"),
        (lambda s: s["layers"][1].update(name="stem"), "'name' must be a unique"),
        (lambda s: s["layers"][1].update(type="clip", min=2.0, max=1.0), "larger than 'max'"),
        (lambda s: s.update(version=1), "'inputs' needs format version 2"),
        (lambda s: s.update(output="scores"), "'output' must be one of"),
        (lambda s: s["preprocess"].update(std=[1, 0, 1]), "'std' must be positive"),
        (lambda s: s.update(input_shape=[2, 8, 8]), "1 or 3 channels"),
    ],
)
def test_graph_errors_name_the_layer(tmp_path, change, fragment):
    spec = copy.deepcopy(GRAPH_SPEC)
    arrays = random_arrays(GRAPH_SPEC)
    change(spec)
    expect(write_npz(tmp_path / "m.npz", spec, arrays), fragment)


def test_version_1_files_load_unchanged(shipped):
    for model in (shipped["mlp"], shipped["cnn"]):  # the shipped chains are version-1 files
        assert model.is_sequential and model.spec["version"] == 1
        assert model.output_kind == "probabilities"
    resnet = shipped["resnet"]  # the shipped graph model is a version-2 file, ending in logits
    assert not resnet.is_sequential and resnet.spec["version"] == 2
    assert resnet.output_kind == "logits"
