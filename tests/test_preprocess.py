"""Drawings of any size, polarity and format become MNIST-like inputs."""

import numpy as np
import pytest

from nnviz_blender.core.forward import predict
from nnviz_blender.core.mnist import accuracy
from nnviz_blender.core.preprocess import InputError, center_of_mass, prepare, to_gray


def digit(mnist_test, i=0):
    return mnist_test[0][i].astype(np.float32) / 255.0


def test_empty_canvas_gives_zeros():
    for image in (np.zeros((300, 300)), np.ones((64, 80, 4), np.float32)):
        out = prepare((1, 28, 28), image)
        assert out.shape == (1, 28, 28) and out.dtype == np.float32 and not out.any()


def test_mnist_digit_survives_a_round_trip(mnist_test):
    d = digit(mnist_test)
    out = prepare((1, 28, 28), d)[0]
    assert np.abs(out - d).mean() < 0.06
    cy, cx = center_of_mass(out)
    assert abs(cy - 14.5) < 0.05 and abs(cx - 14.5) < 0.05  # where MNIST puts it
    assert out.max() == pytest.approx(1.0, abs=0.05)


def test_fit_longest_side_into_twenty(mnist_test):
    canvas = np.zeros((500, 400), np.float32)
    canvas[100:400, 150:200] = 1.0  # a tall bar: 300 x 50
    out = prepare((1, 28, 28), canvas)[0]
    # Coverage along each axis (anti-aliased edges count by their share): 20 tall, 50/300*20 wide.
    assert out.max(axis=1).sum() == pytest.approx(20.0, abs=0.05)
    assert out.max(axis=0).sum() == pytest.approx(50 / 300 * 20, abs=0.05)


def test_polarity_formats_and_dtypes_agree(mnist_test):
    d = digit(mnist_test, 3)
    big = np.kron(d, np.ones((8, 8), np.float32))
    light = prepare((1, 28, 28), big)
    variants = [
        1.0 - big,  # dark ink on white paper
        (big * 255).astype(np.uint8),
        np.dstack([big, big, big]),
        np.dstack([big, big, big, np.ones_like(big)]),
        np.dstack([np.zeros_like(big)] * 3 + [big]),  # strokes on a transparent canvas
    ]
    for v in variants:
        np.testing.assert_allclose(prepare((1, 28, 28), v), light, atol=0.01)
    np.testing.assert_allclose(prepare((1, 28, 28), 1.0 - big, ink="dark"), light, atol=0.01)
    assert not np.allclose(prepare((1, 28, 28), 1.0 - big, ink="light"), light, atol=0.1)


def test_cnn_input_is_padded_field():
    canvas = np.zeros((100, 100), np.float32)
    canvas[20:80, 45:55] = 1
    out = prepare((1, 32, 32), canvas)
    assert out.shape == (1, 32, 32)
    assert not out[0, :2].any() and not out[0, -2:].any() and not out[0, :, :2].any()
    np.testing.assert_allclose(out[0, 2:30, 2:30], prepare((1, 28, 28), canvas)[0])


@pytest.mark.parametrize(
    "bad", [np.zeros((3, 4, 5, 6)), np.zeros((10, 10, 2)), np.array([[np.nan]]), np.zeros((0, 5))]
)
def test_bad_images_are_rejected(bad):
    with pytest.raises(InputError):
        prepare((1, 28, 28), bad)


def test_gray_of_rgb_uses_luminance():
    rgb = np.zeros((2, 2, 3), np.float32)
    rgb[..., 1] = 1.0
    assert to_gray(rgb)[0, 0] == pytest.approx(0.7152)


def place_randomly(images, rng, canvas_size=280):
    """Each digit scaled by 2-8x and put at a random place on a large black canvas."""
    canvases = np.zeros((len(images), canvas_size, canvas_size), np.float32)
    for c, img in zip(canvases, images, strict=True):
        s = int(rng.integers(2, 9))
        big = np.kron(img, np.ones((s, s), np.float32))
        y, x = rng.integers(0, canvas_size - big.shape[0] + 1, size=2)
        c[y : y + big.shape[0], x : x + big.shape[1]] = big
    return canvases


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
def test_position_and_scale_do_not_matter(shipped, mnist_test, name):
    """Digits drawn small in a corner or large off-centre classify like the originals."""
    model = shipped[name]
    images, labels = mnist_test[0][:1000], mnist_test[1][:1000]
    base = accuracy(model, images, labels)
    canvases = place_randomly(images.astype(np.float32) / 255.0, np.random.default_rng(7))
    x = np.stack([prepare(model, c) for c in canvases])
    moved = float((predict(model, x).argmax(axis=1) == labels).mean())
    assert moved >= base - 0.01, (base, moved)
