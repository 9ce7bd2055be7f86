"""Backbones: timm's features_only / out_indices / feature_info over the IR (netspec.backbone), the pruned
graph compiled to return the maps, named points, and a hand-written FPN trained on one."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import netspec
from netspec.backbone import feature_points, strides
from netspec.cli import main
from netspec.scale import apply_scaling

# One spec per zoo family, as written. Index i = the last map at stride 2^(i+1).
FAMILIES = [n for n in netspec.list_models() if netspec.zoo.lookup(n).variant is None]
# Networks with no map at some stride: LeNet-5 (32x32 digits: strides 2 and 4 only) and SqueezeNet (its
# last map is at stride 16: 13x13 at 224).
SHALLOW = {"lenet5": [0, 1], "lenet5_1998": [0, 1], "squeezenet1_0": [0, 1, 2, 3], "squeezenet1_1": [0, 1, 2, 3]}


def _graph(name, **kw):
    return netspec.lower(apply_scaling(netspec.load(name, **kw)), aux=False)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_zoo_family_has_its_feature_maps(name):
    G = _graph(name)
    points = feature_points(G)
    assert sorted(points)[-len(SHALLOW.get(name, [1, 2, 3, 4])):] == SHALLOW.get(name, [1, 2, 3, 4])
    h = G.graph["input_shape"][1]
    for i, p in points.items():
        assert p.reduction == 2 ** (i + 1)
        c, ph, _ = G.nodes[p.node]["shape"]
        assert c == p.channels
        if not name.startswith("lenet"):  # unpadded 5x5 convs on 32x32 shrink LeNet's maps beyond their strides
            assert 0.6 < h / ph / p.reduction < 1.6  # the map's size agrees with its stride
        assert G.nodes[p.node]["part"] != "head" and not G.nodes[p.node]["aux"]


def test_feature_info_matches_timm():
    # timm feature_info.channels() / .reduction() of resnet50, efficientnet_b0 and mobilenetv2_100 (block
    # outputs, timm's default feature_location; read from timm's model definitions, timm is not installed here)
    expect = {"resnet50": [64, 256, 512, 1024, 2048], "efficientnet_b0": [16, 24, 40, 112, 320],
              "mobilenet_v2": [16, 24, 32, 96, 320]}
    for name, channels in expect.items():
        points = feature_points(_graph(name))
        assert [p.channels for p in points.values()] == channels, name
        assert [p.reduction for p in points.values()] == [2, 4, 8, 16, 32]
    assert feature_points(_graph("resnet50"))[1].module == "stages.layer1.blocks.2"


def test_an_se_gate_is_not_a_stride():
    s = strides(_graph("efficientnet_b0"))
    assert s["stages.6.blocks.0.project.bn"] == 32


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "efficientnet_b0"])
def test_backbone_maps_are_the_networks_own(name):
    """Same seed, same weights: each map equals the whole network's value at that node."""
    full = netspec.build(name, res=64).eval()
    backbone = netspec.build(name, res=64, features_only=True, out_indices=(1, 2, 3, 4)).eval()
    full_state = full.state_dict()
    assert all(torch.equal(v, full_state[k]) for k, v in backbone.state_dict().items())
    assert not any(k.startswith("head.") for k in backbone.state_dict())
    seen = {}
    hooks = [full.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.clone()))
             for n in backbone.output_nodes]
    x = torch.randn(2, 3, 64, 64)
    full(x)
    for h in hooks:
        h.remove()
    maps = backbone(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(c, 64 // r, 64 // r) for c, r in
                                                 zip(backbone.feature_info.channels(), backbone.feature_info.reduction())]
    for n, m in zip(backbone.output_nodes, maps):
        assert torch.equal(m, seen[n]), n
    with torch.no_grad():  # eval with gradients off: the same maps (no in-place pass overwrites one)
        assert all(torch.equal(a, b) for a, b in zip(backbone(x), maps))


def test_scaling_rules_naming_head_entries_do_not_matter():
    """MobileNetV2 0.35's width rule names head.conv; the backbone prunes the head from the graph."""
    m = netspec.build("mobilenet_v2_0.35", features_only=True, res=64)
    assert m.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert m.feature_info.channels() == [8, 8, 16, 32, 112]
    assert len(m(torch.randn(1, 3, 64, 64))) == 5


def test_named_points_and_errors():
    m = netspec.build("resnet18", out_nodes=["stages.layer3", "stem.maxpool", "stages.layer4.blocks.0"], res=64)
    assert m.feature_info == [{"num_chs": 256, "reduction": 16, "module": "stages.layer3"},
                              {"num_chs": 64, "reduction": 4, "module": "stem.maxpool"},
                              {"num_chs": 512, "reduction": 32, "module": "stages.layer4.blocks.0"}]
    assert [t.shape[1] for t in m(torch.randn(1, 3, 64, 64))] == [256, 64, 512]
    with pytest.raises(netspec.SpecError, match="did you mean 'stages.layer3'"):
        netspec.build("resnet18", out_nodes=["stages.layer33"])
    with pytest.raises(netspec.SpecError, match="no feature map at index 4 .stride 32."):
        netspec.build("squeezenet1_1", features_only=True, out_indices=(1, 2, 3, 4))
    with pytest.raises(netspec.SpecError, match="no feature map at index 7"):
        netspec.build("resnet18", features_only=True, out_indices=(7,))


def test_backbone_from_a_whole_network_checkpoint(tmp_path):
    path = tmp_path / "r18.pt"
    whole = netspec.build("resnet18", seed=3)
    torch.save(whole.state_dict(), path)
    m = netspec.build("resnet18", features_only=True, weights=path)
    ref = whole.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in m.state_dict().items())
    assert m.weights_report.how == "name"
    # a network with aux heads: the checkpoint holds them, the backbone does not
    torch.save(netspec.build("googlenet", res=64).state_dict(), tmp_path / "g.pt")
    g = netspec.build("googlenet", res=64, features_only=True, weights=tmp_path / "g.pt")
    assert g.feature_info.channels() == [64, 192, 480, 832, 1024]
    assert not any(".aux" in k for k in g.state_dict())


def test_cli_features(capsys, tmp_path):
    assert main(["build", "mobilenet_v2", "--features", "1,2,3,4", "--out", str(tmp_path / "b.pt")]) == 0
    out = capsys.readouterr().out
    assert "1      stages.1.blocks.1        24          4  24×56×56" in out
    assert "4      stages.6.blocks.0       320         32  320×7×7" in out and "params 1,811,712" in out
    assert "features.18" not in str(torch.load(tmp_path / "b.pt", weights_only=True).keys())
    assert main(["build", "squeezenet1_1", "--features", "4"]) == 2
    assert "available: 0 (stride 2), 1 (stride 4), 2 (stride 8), 3 (stride 16)" in capsys.readouterr().err


class FPNSegmenter(nn.Module):
    """A small hand-written FPN (Lin et al. 2017) with a segmentation head over any feature_info."""

    def __init__(self, backbone: nn.Module, classes: int, width: int = 32):
        super().__init__()
        self.backbone = backbone
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in backbone.feature_info.channels())
        self.smooth = nn.Conv2d(width, width, 3, padding=1)
        self.classify = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        maps = [lat(f) for lat, f in zip(self.lateral, self.backbone(x))]
        top = maps[-1]
        for m in reversed(maps[:-1]):  # top-down: upsample and add the lateral
            top = m + F.interpolate(top, size=m.shape[-2:], mode="nearest")
        return F.interpolate(self.classify(F.relu(self.smooth(top))), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


def test_fpn_segmentation_trains_on_a_backbone():
    torch.manual_seed(0)
    backbone = netspec.build("mobilenet_v2_0.35", features_only=True, out_indices=(1, 2, 3, 4), res=64)
    model = FPNSegmenter(backbone, classes=2)
    x = torch.rand(8, 3, 64, 64)
    target = torch.zeros(8, 64, 64, dtype=torch.long)
    for i in range(8):  # a bright square to segment
        r, c = 8 + 4 * i, 40 - 4 * i
        x[i, :, r:r + 16, c:c + 16] += 2.0
        target[i, r:r + 16, c:c + 16] = 1
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(12):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        stem_grad = next(p for n, p in backbone.named_parameters() if n.startswith("stem.")).grad
        assert stem_grad is not None and stem_grad.abs().sum() > 0  # gradients reach the stem
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
