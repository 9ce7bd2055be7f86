"""Receptive-field anchors of real networks (figures.json "receptive_field"), table-driven.

Each anchor names a spec and how to find its end point in the graph; a spec
that has not been written yet is skipped with a reason, so the anchor lights
up when the spec lands.
"""
from __future__ import annotations

import pytest

from netspec.analysis import analyze
from netspec.analysis.receptive import receptive_fields
from netspec.lower import lower
from netspec.spec import load_spec

from conftest import SPECS


def features(G, r):
    return r.features


def before_last_maxpool(G, r):
    """The input of the last max-pool before the features end point (VGG16 conv5_3 before pool5)."""
    n = r.features
    while G.nodes[n]["op"] != "maxpool":
        n = G.nodes[n]["inputs"][0]
    return G.nodes[n]["inputs"][0]


# (figures.json key, spec, overrides, end point, which RF: strict or spatial = ignoring SE gates)
ANCHORS = [
    ("alexnet_pool5", "alexnet", [], features, "strict"),
    ("vgg16_pool5", "vgg", [], features, "strict"),
    ("vgg16_conv5_3", "vgg", [], before_last_maxpool, "strict"),
    ("googlenet_inception5b", "googlenet", [], features, "strict"),
    ("inception_v3_mixed_7c", "inception_v3", [], features, "strict"),
    ("mobilenet_v2_features", "mobilenet_v2", [], features, "strict"),
    ("shufflenet_v2_x1_0_conv5", "shufflenet_v2", [], features, "strict"),
    ("squeezenet1_0_features", "squeezenet1_0", [], features, "strict"),
    ("efficientnet_b0_features_without_se", "efficientnet", [], features, "spatial"),
    ("efficientnet_b0_features", "efficientnet", [], features, "strict"),
    ("mobilenet_v1_conv13_pointwise", "mobilenet_v1", [], features, "strict"),
]


@pytest.mark.parametrize("key, spec, overrides, end_point, mode", ANCHORS, ids=[a[0] for a in ANCHORS])
def test_receptive_field_anchor(figures, key, spec, overrides, end_point, mode):
    path = SPECS / f"{spec}.yaml"
    if not path.exists():
        pytest.skip(f"{path.name} does not exist yet")
    G = lower(load_spec(path, overrides=overrides))
    r = analyze(G)
    node = end_point(G, r)
    rf = receptive_fields(G, ignore_gates=(mode == "spatial"))[node]
    expected = figures["receptive_field"][key]
    if isinstance(expected, str):
        assert expected.startswith("global") and rf.is_global, (node, rf.describe())
    else:
        assert rf.size == (expected, expected), (node, rf.describe())
        assert not rf.warnings, rf.warnings
