"""DenseNet (specs/densenet.yaml, blocks netspec/blocks/densenet.yaml) against torchvision: dense
connectivity through `f.*`. Counts of every variant equal figures.json; DenseNet-121 gives
torchvision's logits in eval and train mode after copying its tensors by registration order."""
from __future__ import annotations

import pytest

from conftest import SPECS
from netspec.analysis import costs
from netspec.lower import lower
from netspec.scale import apply_scaling
from netspec.spec import load_spec

VARIANTS = ["densenet121", "densenet161", "densenet169", "densenet201"]


def graph(variant: str, resolution=None):
    return lower(apply_scaling(load_spec(SPECS / "densenet.yaml"), variant=variant, resolution=resolution))


@pytest.mark.parametrize("variant", VARIANTS)
def test_counts_equal_torchvision(variant, figures):
    G, fig = graph(variant), figures["torchvision"][variant]
    assert costs.total_params(G) == fig["params"] == fig["torchvision_num_params"]
    assert costs.total_buffers(G) == fig["buffers"]
    assert costs.total_macs(G) == fig["macs"]


def test_each_layer_reads_everything_before_it_in_its_block():
    G = graph("densenet121")
    layer = "stages.denseblock2.blocks.layer"
    assert G.nodes[f"{layer}.3.cat"]["inputs"] == ["stages.denseblock2.blocks.transition1.pool",
                                                   *(f"{layer}.{k}.conv2" for k in range(3))]
    # 64 + 6 * 32 = 256; -> 128 + 12 * 32 = 512; -> 256 + 24 * 32 = 1024; -> 512 + 16 * 32 = 1024
    shapes = {p.name: tuple(p.output_shape) for p in costs.parts(G)}
    assert [shapes[f"denseblock{k}"] for k in range(1, 5)] == [(256, 56, 56), (512, 28, 28), (1024, 14, 14),
                                                                 (1024, 7, 7)]


def test_densenet121_equals_torchvision_after_copying_its_tensors():
    torch = pytest.importorskip("torch")
    from netspec._torchvision import import_torchvision
    from netspec.backends.pytorch import compile_graph

    torch.manual_seed(0)
    ref = import_torchvision().models.densenet121()
    with torch.no_grad():  # non-trivial BN statistics and affine parameters
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 1.5)
    ours = compile_graph(graph("densenet121", resolution=64), seed=None)
    theirs = list(ref.parameters()) + list(ref.buffers())
    mine = list(ours.parameters()) + list(ours.buffers())
    assert [t.shape for t in theirs] == [t.shape for t in mine]
    with torch.no_grad():
        for src, dst in zip(theirs, mine):
            dst.copy_(src)
        x = torch.randn(2, 3, 64, 64)
        for mode in (False, True):
            ref.train(mode), ours.train(mode)
            assert torch.allclose(ref(x), ours(x), rtol=1e-4, atol=1e-4), mode
