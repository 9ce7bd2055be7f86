"""Every variant of the scaled families against figures.json, computed by the analyser (no torch)."""
from __future__ import annotations

import pytest

from netspec.analysis import costs
from netspec.lower import lower
from netspec.scale import apply_scaling
from netspec.spec import load_spec

from conftest import SPECS


def analyse(spec_file: str, variant=None, resolution=None):
    G = lower(apply_scaling(load_spec(SPECS / spec_file), variant=variant, resolution=resolution))
    return G, costs.total_params(G), costs.total_macs(G), costs.total_buffers(G)


EFFICIENTNET = [f"b{i}" for i in range(8)]


@pytest.mark.parametrize("variant", EFFICIENTNET)
def test_efficientnet_at_torchvision_crop(variant, figures):
    ref = figures["torchvision"][f"efficientnet_{variant}"]
    G, params, macs, buffers = analyse("efficientnet.yaml", variant, ref["resolution"])
    assert G.graph["input_shape"] == (3, ref["resolution"], ref["resolution"])
    assert (params, macs, buffers) == (ref["params"], ref["macs"], ref["buffers"])


def test_efficientnet_variant_default_resolution_is_the_papers():
    # B2: paper/TF/timm 260, torchvision's evaluation crop 288 (tested above with an explicit resolution)
    G, *_ = analyse("efficientnet.yaml", "b2")
    assert G.graph["input_shape"] == (3, 260, 260)
    assert G.graph["name"] == "efficientnet_b2"


def test_efficientnet_base_is_b0(figures):
    _, params, macs, _ = analyse("efficientnet.yaml")
    assert (params, macs) == (figures["torchvision"]["efficientnet_b0"]["params"],
                              figures["torchvision"]["efficientnet_b0"]["macs"])


def test_efficientnet_b3_channels_and_repeats():
    # architectures.md §8.1: B3 stem 40, stage outs 24,32,48,96,136,232,384, repeats 2,3,3,5,5,6,2, head 1536
    G, *_ = analyse("efficientnet.yaml", "b3")
    assert G.nodes["stem.conv.conv"]["shape"][0] == 40
    scopes = G.graph["scopes"]
    blocks = [[s for s, i in scopes.items() if i["kind"] == "block" and i["parent"] == f"stages.{k}.blocks"]
              for k in range(7)]
    assert [len(b) for b in blocks] == [2, 3, 3, 5, 5, 6, 2]
    outs = [G.nodes[f"{b[-1]}.project.conv"]["shape"][0] for b in blocks]
    assert outs == [24, 32, 48, 96, 136, 232, 384]
    assert G.nodes["head.conv.conv"]["shape"][0] == 1536


def test_efficientnet_torchvision_details():
    G, *_ = analyse("efficientnet.yaml", "b0")
    # SE squeeze = max(1, in // 4) of the block input: first block 32 // 4 = 8, stage 1 first block 16 // 4 = 4
    assert G.nodes["stages.0.blocks.0.se.reduce"]["attrs"]["out"] == 8
    assert G.nodes["stages.1.blocks.0.se.reduce"]["attrs"]["out"] == 4
    # stochastic depth 0.2 * i / 16 on residual blocks only (block i counted over all 16 blocks)
    drops = {n: d["attrs"]["p"] for n, d in G.nodes(data=True) if d["op"] == "drop_path"}
    assert drops["stages.1.blocks.1.drop_path"] == pytest.approx(0.2 * 2 / 16)
    assert drops["stages.5.blocks.3.drop_path"] == pytest.approx(0.2 * 14 / 16)
    assert "stages.0.blocks.0.drop_path" not in drops          # stride 1 but 32 -> 16: no residual
    assert G.nodes["head.dropout"]["attrs"]["p"] == 0.2


@pytest.mark.parametrize("variant, eps, momentum", [("b4", 1e-5, 0.1), ("b5", 1e-3, 0.01), ("b7", 1e-3, 0.01)])
def test_efficientnet_batchnorm_per_variant(variant, eps, momentum):
    G, *_ = analyse("efficientnet.yaml", variant)
    bns = [d["attrs"] for _, d in G.nodes(data=True) if d["op"] == "batchnorm"]
    assert {(a["eps"], a["momentum"]) for a in bns} == {(eps, momentum)}


def test_efficientnet_dropout_per_variant():
    for variant, p in (("b1", 0.2), ("b3", 0.3), ("b4", 0.4), ("b7", 0.5)):
        G, *_ = analyse("efficientnet.yaml", variant)
        assert G.nodes["head.dropout"]["attrs"]["p"] == p


@pytest.mark.parametrize("variant", ["s", "m", "l"])
def test_efficientnet_v2(variant, figures):
    ref = figures["torchvision"][f"efficientnet_v2_{variant}"]
    G, params, macs, buffers = analyse("efficientnet_v2.yaml", variant)
    assert G.graph["input_shape"] == (3, ref["resolution"], ref["resolution"])
    assert (params, macs, buffers) == (ref["params"], ref["macs"], ref["buffers"])
    assert {d["attrs"]["eps"] for _, d in G.nodes(data=True) if d["op"] == "batchnorm"} == {1e-3}


def test_efficientnet_v2_default_is_s(figures):
    _, params, macs, _ = analyse("efficientnet_v2.yaml")
    assert (params, macs) == (figures["torchvision"]["efficientnet_v2_s"]["params"],
                              figures["torchvision"]["efficientnet_v2_s"]["macs"])


@pytest.mark.parametrize("alpha", ["1.0", "0.75", "0.5", "0.25"])
@pytest.mark.parametrize("res", [224, 192, 160, 128])
def test_mobilenet_v1_params(alpha, res, figures):
    G, params, _, _ = analyse("mobilenet_v1.yaml", f"{alpha}_{res}")
    assert G.graph["input_shape"] == (3, res, res)
    assert params == figures["other"][f"mobilenet_v1_{alpha}"]["params"]


@pytest.mark.parametrize("variant, paper_mmacs, paper_mparams", [
    # Howard et al. 2017 Table 6 (width) and Table 7 (resolution), mult-adds and parameters in
    # millions as the paper prints them: rounded (568.7 -> 569) or truncated (290.7 -> 290)
    ("1.0_224", 569, 4.2), ("0.75_224", 325, 2.6), ("0.5_224", 149, 1.3), ("0.25_224", 41, 0.5),
    ("1.0_192", 418, 4.2), ("1.0_160", 290, 4.2), ("1.0_128", 186, 4.2),
])
def test_mobilenet_v1_against_the_paper(variant, paper_mmacs, paper_mparams):
    G, params, macs, _ = analyse("mobilenet_v1.yaml", variant)
    assert paper_mmacs in (round(macs / 1e6), macs // 10**6)
    assert round(params / 1e6, 1) == paper_mparams


def test_mobilenet_v1_resolution_variants_are_the_res_option():
    by_variant = analyse("mobilenet_v1.yaml", "0.5_160")[1:3]
    assert by_variant == analyse("mobilenet_v1.yaml", "0.5_224", 160)[1:3]


def test_mobilenet_v1_slim_channels():
    # 0.25: stem max(int(32 * 0.25), 8) = 8, last pointwise int(1024 * 0.25) = 256
    G, *_ = analyse("mobilenet_v1.yaml", "0.25_224")
    assert G.nodes["stem.conv.conv"]["shape"][0] == 8
    assert G.nodes["head.pool"]["shape"][0] == 256


@pytest.mark.parametrize("alpha", ["0.35", "0.5", "0.75", "1.3", "1.4"])
def test_mobilenet_v2_widths(alpha, figures):
    _, params, _, _ = analyse("mobilenet_v2.yaml", alpha)
    assert params == figures["other"][f"mobilenet_v2_{alpha}"]["params"]


def test_mobilenet_v2_default_stays_torchvision(figures):
    ref = figures["torchvision"]["mobilenet_v2"]
    for variant in (None, "1.0"):
        _, params, macs, buffers = analyse("mobilenet_v2.yaml", variant)
        assert (params, macs, buffers) == (ref["params"], ref["macs"], ref["buffers"])


@pytest.mark.parametrize("alpha, last", [("0.35", 1280), ("0.75", 1280), ("1.3", 1664), ("1.4", 1792)])
def test_mobilenet_v2_last_channel_fixed_point(alpha, last):
    # make_divisible(1280 * max(1, alpha), 8): 1280 * 1.3 = 1664, 1280 * 1.4 = 1792
    G, *_ = analyse("mobilenet_v2.yaml", alpha)
    assert G.nodes["head.conv.conv"]["shape"][0] == last


@pytest.mark.parametrize("variant", ["x0_5", "x1_0", "x1_5", "x2_0"])
def test_shufflenet_v2(variant, figures):
    ref = figures["torchvision"][f"shufflenet_v2_{variant}"]
    _, params, macs, buffers = analyse("shufflenet_v2.yaml", variant)
    assert (params, macs, buffers) == (ref["params"], ref["macs"], ref["buffers"])


def test_shufflenet_v2_default_is_x1_0(figures):
    ref = figures["torchvision"]["shufflenet_v2_x1_0"]
    _, params, macs, buffers = analyse("shufflenet_v2.yaml")
    assert (params, macs, buffers) == (ref["params"], ref["macs"], ref["buffers"])
