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
    spec = {"input_shape": [1, 1500, 1500], "layers": [{"type": "relu"}]}
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
