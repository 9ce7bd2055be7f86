"""The ResNet family (specs/resnet.yaml, blocks netspec/blocks/resnet.yaml) against torchvision.

Front end (no torch): every variant's parameters, buffers and MACs at 224 equal figures.json, and
the stage shapes are the paper's (Table 1). Torch: each variant, built from the one family spec,
gives torchvision's logits in eval and train mode after copying torchvision's tensors into it by
registration order (64 px inputs keep the big ones fast), which also checks that the projection
shortcut registers after the main branch as torchvision's `downsample` does.
"""
from __future__ import annotations

import pytest

from conftest import SPECS
from netspec.analysis import costs
from netspec.lower import lower
from netspec.scale import apply_scaling
from netspec.spec import load_spec

VARIANTS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
            "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2"]
# the parameter counts the issue asks for (torchvision's published num_params)
PUBLISHED = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
             "resnet101": 44_549_160, "resnet152": 60_192_808}


def graph(variant: str, resolution=None):
    return lower(apply_scaling(load_spec(SPECS / "resnet.yaml"), variant=variant, resolution=resolution))


@pytest.mark.parametrize("variant", VARIANTS)
def test_counts_equal_torchvision(variant, figures):
    G, fig = graph(variant), figures["torchvision"][variant]
    assert fig["resolution"] == 224 and G.graph["input_shape"] == (3, 224, 224)
    assert costs.total_params(G) == fig["params"] == fig["torchvision_num_params"]
    assert costs.total_buffers(G) == fig["buffers"]
    assert costs.total_macs(G) == fig["macs"]
    assert round(costs.total_macs(G) / 1e9, 3) == fig["torchvision_gflops"]  # torchvision's "GFLOPS" are GMACs
    if variant in PUBLISHED:
        assert costs.total_params(G) == PUBLISHED[variant]


@pytest.mark.parametrize("variant, channels", [("resnet18", (64, 128, 256, 512)),
                                               ("resnet50", (256, 512, 1024, 2048))])
def test_stage_shapes_are_the_papers(variant, channels):
    G = graph(variant)
    shapes = {p.name: tuple(p.output_shape) for p in costs.parts(G)}
    assert shapes["stem"] == (64, 56, 56)
    assert [shapes[f"layer{k}"] for k in range(1, 5)] == [(c, s, s) for c, s in zip(channels, (56, 28, 14, 7))]


def test_shortcuts_project_only_when_the_shape_changes():
    G = graph("resnet50")
    projected = sorted(n.rsplit(".downsample", 1)[0] for n in G if n.endswith("downsample.conv"))
    # every stage's first block (layer1: 64 -> 256 channels; layers 2-4: stride 2)
    assert projected == [f"stages.layer{k}.blocks.0" for k in range(1, 5)]
    assert G.nodes["stages.layer2.blocks.0.conv2"]["attrs"]["stride"] == (2, 2)  # v1.5: stride on the 3x3
    assert G.nodes["stages.layer2.blocks.0.conv1"]["attrs"]["stride"] == (1, 1)
    add = G.nodes["stages.layer2.blocks.1.add"]["inputs"]
    assert add == ["stages.layer2.blocks.1.bn3", "stages.layer2.blocks.0.relu"]  # identity shortcut
    G = graph("resnext50_32x4d")
    assert G.nodes["stages.layer1.blocks.0.conv2"]["attrs"]["groups"] == 32
    assert G.nodes["stages.layer1.blocks.0.conv2"]["shape"][0] == 128  # int(64 * 4 / 64) * 32


# --------------------------------------------------------------------------- torch

def _torchvision():
    from netspec._torchvision import import_torchvision
    return import_torchvision().models


def copy_by_order(ref, ours):
    """torchvision's tensors into ours by registration order (shapes must agree one by one)."""
    import torch
    theirs = list(ref.parameters()) + list(ref.buffers())
    mine = list(ours.parameters()) + list(ours.buffers())
    assert [t.shape for t in theirs] == [t.shape for t in mine]
    with torch.no_grad():
        for src, dst in zip(theirs, mine):
            dst.copy_(src)


@pytest.mark.parametrize("variant", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                     "resnext50_32x4d", "wide_resnet50_2"])
def test_equals_torchvision_after_copying_its_tensors(variant):
    torch = pytest.importorskip("torch")
    from netspec.backends.pytorch import compile_graph

    tvm = _torchvision()
    torch.manual_seed(0)
    ref = getattr(tvm, variant)()
    with torch.no_grad():  # non-trivial BN statistics and affine parameters
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 1.5)
    ours = compile_graph(graph(variant, resolution=64), seed=None)
    copy_by_order(ref, ours)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for mode in (False, True):
            ref.train(mode), ours.train(mode)
            assert torch.allclose(ref(x), ours(x), rtol=1e-4, atol=1e-4), (variant, mode)


def test_zero_init_residual_matches_torchvision():
    """`--set vars.zero_init_residual=true`: the last BN of every block starts with gamma 0."""
    torch = pytest.importorskip("torch")
    import netspec

    ref = _torchvision().resnet18(zero_init_residual=True)
    spec = load_spec(SPECS / "resnet.yaml", overrides=["vars.zero_init_residual=true"])
    ours = netspec.compile(lower(apply_scaling(spec, variant="resnet18")))

    def zeroed(model):  # BN scales that start at 0
        return [n for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 1 and not p.any()]

    expected = [f"layer{k}.{b}.bn2.weight" for k in range(1, 5) for b in range(2)]
    assert zeroed(ref) == expected
    assert [n.replace("stages.", "").replace("blocks.", "") for n in zeroed(ours)] == expected
    assert zeroed(netspec.compile(graph("resnet18"))) == []  # off by default, as in torchvision
