"""Display values (core.values): what every node shows, live, rendered and baked (pure NumPy)."""

import numpy as np
import pytest
from conftest import CNN_SPEC, MLP_SPEC, random_arrays

from nnviz_blender.core import values as vals
from nnviz_blender.core.forward import forward
from nnviz_blender.core.graph import build_graph, graph_from_table, node_values, stage_table
from nnviz_blender.core.modelfile import build_model


@pytest.fixture(scope="module")
def cnn():
    model = build_model(CNN_SPEC, random_arrays(CNN_SPEC, 3))
    return model, build_graph(model)


def _values(model, graph, n=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *model.input_shape)) * (rng.random((n, *model.input_shape)) > 0.5)
    return node_values(graph, forward(model, x.astype(np.float32)))


def _spans(graph, per):
    """(start, size) of every non-input group, read off the stages."""
    out = []
    for stage in graph.stages[1:]:
        if per == "map" and stage.is_map:
            n = stage.shape[1] * stage.shape[2]
            out += [(stage.start + m * n, n) for m in range(stage.shape[0])]
        else:
            out.append((stage.start, stage.size))
    return out


@pytest.mark.parametrize("per", ["map", "stage"])
def test_level_spans_each_group_and_signed_peaks_at_one(cnn, per):
    model, graph = cnn
    acts = forward(model, np.random.default_rng(1).random(model.input_shape).astype(np.float32))
    values = node_values(graph, acts)
    shown = vals.show(graph, acts, per)
    assert shown.level.dtype == np.float32 and shown.level.shape == (graph.node_count,)
    for start, size in _spans(graph, per):
        level = shown.level[start : start + size]
        signed = shown.signed[start : start + size]
        raw = values[start : start + size]
        assert level.min() == 0.0 and level.max() == pytest.approx(1.0)
        np.testing.assert_allclose(level, (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)
        assert np.abs(signed).max() == pytest.approx(1.0)
        assert np.array_equal(np.sign(signed), np.sign(raw))
    first = graph.stages[0]
    assert np.array_equal(shown.level[: first.size], values[: first.size])  # pixels as they are
    assert np.array_equal(shown.signed[: first.size], values[: first.size])
    assert np.array_equal(shown.act, values)


def test_global_level_is_one_group_and_signed_stays_per_stage(cnn):
    model, graph = cnn
    values = _values(model, graph)[0]
    shown = vals.display(vals.groups(graph, "global"), values)
    rest = slice(graph.stages[1].start, graph.node_count)
    raw = values[rest]
    np.testing.assert_allclose(shown.level[rest], (raw - raw.min()) / (raw.max() - raw.min()))
    by_stage = vals.display(vals.groups(graph, "stage"), values)
    assert np.array_equal(shown.signed, by_stage.signed)


def test_constant_group_is_zero_and_pixels_outside_unit_range_get_min_max():
    graph = build_graph(build_model(MLP_SPEC, random_arrays(MLP_SPEC, 1)))
    values = np.zeros(graph.node_count, dtype=np.float32)
    values[:784] = np.linspace(-1, 3, 784)
    values[784:1084] = 0.7
    grp = vals.groups(graph, "stage")
    shown = vals.display(grp, values)
    assert np.all(shown.level[784:1084] == 0.0)
    assert np.all(shown.signed[1084:] == 0.0)  # an all-zero group: no division by zero
    np.testing.assert_allclose(shown.level[:784], np.linspace(0, 1, 784), atol=1e-6)
    with pytest.raises(ValueError):
        vals.groups(graph, "per-layer")


@pytest.mark.parametrize("spec", [CNN_SPEC, MLP_SPEC])
@pytest.mark.parametrize("per", ["map", "stage", "global"])
def test_a_table_of_keys_gives_each_key_its_own_view(spec, per):
    """The bake stores raw values and per-key constants: each key must read as shown alone."""
    model = build_model(spec, random_arrays(spec, 3))
    graph = build_graph(model)
    kv = _values(model, graph, 4)
    kv[3] = node_values(graph, forward(model, np.zeros(model.input_shape, np.float32)))
    grp = vals.groups(graph, per)
    const = vals.constants(grp, kv)
    assert const.shape == (4, grp.width, 3) and const.dtype == np.float32
    batch = vals.display(grp, kv)
    for k in range(4):
        alone = vals.display(grp, kv[k])
        assert np.array_equal(const[k], vals.constants(grp, kv[k]))
        assert np.array_equal(batch.level[k], alone.level)
        assert np.array_equal(batch.signed[k], alone.signed)


def test_groups_count_and_order(cnn):
    _, graph = cnn
    grp = vals.groups(graph, "map")
    # input + 6 + 6 + 16 + 16 feature maps + 3 dense stages, numbered in node order
    assert grp.n_level == grp.n_signed == 1 + 6 + 6 + 16 + 16 + 3
    assert grp.level.dtype == np.int32 and grp.level.shape == (graph.node_count,)
    assert np.all(np.diff(grp.level) >= 0) and grp.level[0] == 0
    glob = vals.groups(graph, "global")
    assert glob.n_level == 2 and glob.n_signed == len(graph.stages)


def test_groups_follow_stages_not_a_chain():
    """Two input stages (a graph model) are two pixel groups; the rest groups as usual."""
    table = [
        {"name": "a", "kind": "input", "act_index": 0, "shape": [4], "start": 0, "size": 4},
        {"name": "b", "kind": "input", "act_index": 1, "shape": [2], "start": 4, "size": 2},
        {"name": "out", "kind": "output", "act_index": 2, "shape": [3], "start": 6, "size": 3},
    ]
    graph = graph_from_table(table)  # a table written before stages kept their sources
    assert stage_table(graph) == [s | {"sources": []} for s in table]
    table[2]["sources"] = [0, 1]
    assert stage_table(graph_from_table(table))[2]["sources"] == [0, 1]
    values = np.array([0.0, 0.5, 1.0, 0.25, 2.0, 4.0, -1.0, 0.0, 3.0], np.float32)
    grp = vals.groups(graph, "global")
    assert list(grp.level) == [0, 0, 0, 0, 1, 1, 2, 2, 2]
    shown = vals.display(grp, values)
    np.testing.assert_array_equal(shown.level[:4], values[:4])  # inside [0, 1]: as they are
    np.testing.assert_array_equal(shown.level[4:6], [0.0, 1.0])  # outside: min-max
    np.testing.assert_allclose(shown.level[6:], [0.0, 0.25, 1.0])
    np.testing.assert_allclose(shown.signed[6:], [-1 / 3, 0.0, 1.0])
