"""The command line, run as a user runs it (a subprocess), and its error handling."""

import json
import os
import subprocess
import sys

import numpy as np
from conftest import MNIST_DIR, ROOT


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "nnviz_blender", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_predict_sample_plain():
    r = run("predict", "--model", "cnn", "--input", "sample:7")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("sample:7: 7  (7: ")


def test_predict_json_has_every_layer(mnist_test):
    r = run("predict", "--model", "mlp", "--input", "sample:3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["prediction"] == "3"
    assert len(out["probabilities"]) == 10 and abs(sum(out["probabilities"]) - 1) < 1e-4
    names = [layer["name"] for layer in out["layers"]]
    assert names[0] == "input" and names[-1] == "output"
    sizes = [len(layer["activations"]) for layer in out["layers"]]
    assert sizes == [784, 300, 100, 10]
    assert out["layers"][-1]["activations"] == out["probabilities"]


def test_predict_npy_stack(tmp_path, mnist_test):
    images, labels = mnist_test
    stack = np.kron(images[:4].astype(np.float32) / 255.0, np.ones((1, 5, 5), np.float32))
    path = tmp_path / "stack.npy"
    np.save(path, 1.0 - stack)  # dark ink on white: detected
    r = run("predict", "--model", "cnn", "--input", str(path), "--json")
    assert r.returncode == 0, r.stderr
    preds = [json.loads(line)["prediction"] for line in r.stdout.splitlines()]
    assert preds == [str(v) for v in labels[:4]]


def test_evaluate_json():
    r = run("evaluate", "--model", "cnn", "--mnist", MNIST_DIR, "--limit", "500", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 500 and out["accuracy"] > 0.97


def test_errors_are_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 3, 4, 5)))
    cases = [
        (("predict", "--model", str(tmp_path / "none.npz"), "--input", "sample:1"), "not found"),
        (("predict", "--model", str(bad), "--input", "sample:1"), "bad.npz"),
        (("predict", "--model", "mlp", "--input", str(wrong)), "expected an image"),
        (("predict", "--model", "mlp", "--input", "nothing.npy"), "input file not found"),
        (("predict", "--model", "mlp", "--input", "sample:x"), "bad sample spec"),
        (("evaluate", "--model", "mlp", "--mnist", str(tmp_path)), "missing MNIST file"),
    ]
    for args, fragment in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        assert fragment in r.stderr and r.stderr.startswith("error: "), r.stderr


def test_import_does_not_need_bpy():
    code = (
        "import sys; sys.modules['bpy'] = None\n"  # any import of bpy now fails
        "import nnviz_blender, nnviz_blender.cli, nnviz_blender.core.forward\n"
        "import nnviz_blender.core.preprocess, nnviz_blender.core.graph\n"
        "import nnviz_blender.core.layout\n"
        "print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.strip() == "ok", r.stderr
    assert os.path.isdir(os.path.join(ROOT, "nnviz_blender", "core"))
