"""The zoo: every reference spec reproduces its reference implementation exactly.

Front end (no torch): parameters, parameters with auxiliary heads, buffers and reference MACs
equal figures.json; per-stage output shapes (ceil_mode and padding show up there) and the
head's op sequence (dropout placement) are the reference's, written here from the reference
tables (the references' constructors and papers).

Torch: the built module has the reference's parameter and buffer counts, trains (forward and
backward, batch 2, reference resolution), returns auxiliary logits in training only, and its
BatchNorm, max-pool and dropout settings are the reference's. Layer order is checked against the
reference constructors' registration order for GoogLeNet and VGG; tests/test_interop_torchvision.py
compares every model with a torchvision counterpart output-for-output through a checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pytest

import netspec
from conftest import SPECS
from netspec.analysis import costs


@dataclass(frozen=True)
class Ref:
    spec: str
    figure: str                          # key in figures.json ("torchvision" or "other" section)
    resolution: int
    aux_figure: Optional[str] = None     # figures key of the model with its aux heads
    aux_heads: int = 0
    stages: dict = field(default_factory=dict)   # part name -> output shape (C, H, W)
    head: tuple = ()                     # op sequence of the head
    bn: Optional[tuple] = None           # (eps, momentum) of every BatchNorm; None: the net has none
    maxpool_ceil: Optional[bool] = None  # ceil_mode of every MaxPool2d; None: the net has none
    dropout: tuple = ()                  # p of every Dropout, in module (registration) order
    run: Optional[str] = "train"         # "train": forward + backward at the reference resolution;
                                         # "eval": one inference; None: front end only (see VGG note)
    variant: Optional[str] = None        # a variant of the spec's `variants:` table

    @property
    def id(self) -> str:
        return f"{self.spec}:{self.variant}" if self.variant else self.spec


BN_DEFAULT = (1e-5, 0.1)
CLS = ("linear",)
VGG_HEAD = ("adaptive_avgpool", "flatten", "linear", "relu", "dropout", "linear", "relu", "dropout", "linear")
VGG_STAGES = {"block1": (64, 112, 112), "block2": (128, 56, 56), "block3": (256, 28, 28),
              "block4": (512, 14, 14), "block5": (512, 7, 7)}
MNV3_HEAD = ("conv2d", "batchnorm", "hardswish", "global_avgpool", "linear", "hardswish", "dropout", "linear")
SQUEEZENET_HEAD = ("dropout", "conv2d", "relu", "global_avgpool")


def vgg(name: str, run: Optional[str]) -> Ref:
    """torchvision's vggNN[_bn] as the variant of that name of specs/vgg.yaml."""
    bn = name.endswith("_bn")
    return Ref("vgg", name, 224, stages=VGG_STAGES, head=VGG_HEAD, bn=BN_DEFAULT if bn else None,
               maxpool_ceil=False, dropout=(0.5, 0.5), run=run, variant=name)


ZOO = [
    Ref("alexnet", "alexnet", 224,
        # 224 -> conv 11/4 p2 -> 55 -> pool 3/2 (floor) -> 27 -> 27 -> 13 -> 13 -> 6
        stages={"conv1": (64, 27, 27), "conv2": (192, 13, 13), "conv3_5": (256, 6, 6)},
        head=("adaptive_avgpool", "flatten", "dropout", "linear", "relu", "dropout", "linear", "relu", "linear"),
        maxpool_ceil=False, dropout=(0.5, 0.5)),
    vgg("vgg16", "train"),
    vgg("vgg16_bn", "train"),
    # The other VGGs are the same `vgg_block` template with other repeats (built and trained above
    # as vgg16 / vgg16_bn); building 133M-parameter modules costs seconds, so front end only.
    vgg("vgg11", None), vgg("vgg11_bn", None), vgg("vgg13", None), vgg("vgg13_bn", None),
    vgg("vgg19", None), vgg("vgg19_bn", None),
    Ref("googlenet", "googlenet", 224, aux_figure="googlenet_aux", aux_heads=2,
        # 224 -> 112 -> pool ceil 56 -> 56 -> pool 28 | 3a, 3b, pool 14 | 4a-4e, pool 2/2 7 | 5a, 5b
        stages={"stem": (192, 28, 28), "inception3": (480, 14, 14), "inception4": (832, 7, 7),
                "inception5": (1024, 7, 7)},
        head=("global_avgpool", "dropout", "linear"),
        bn=(0.001, 0.1), maxpool_ceil=True, dropout=(0.7, 0.7, 0.2)),  # aux1, aux2 registered before the head
    Ref("inception_v3", "inception_v3", 299, aux_figure="inception_v3_aux", aux_heads=1,
        # 299 -> 149 -> 147 -> 147 -> pool 73 -> 73 -> 71 -> pool 35
        stages={"stem": (192, 35, 35), "mixed5": (288, 35, 35), "mixed6": (768, 17, 17), "mixed7": (2048, 8, 8)},
        head=("adaptive_avgpool", "dropout", "flatten", "linear"),
        bn=(0.001, 0.1), maxpool_ceil=False, dropout=(0.5,)),
    Ref("mobilenet_v3_large", "mobilenet_v3_large", 224,
        stages={"stem": (16, 112, 112), "s112": (16, 112, 112), "s56": (24, 56, 56), "s28": (40, 28, 28),
                "s14": (112, 14, 14), "s7": (160, 7, 7)},
        head=MNV3_HEAD, bn=(0.001, 0.01), dropout=(0.2,)),
    Ref("mobilenet_v3_small", "mobilenet_v3_small", 224,
        stages={"s56": (16, 56, 56), "s28": (24, 28, 28), "s14": (48, 14, 14), "s7": (96, 7, 7)},
        head=MNV3_HEAD, bn=(0.001, 0.01), dropout=(0.2,), run="eval"),
    Ref("squeezenet1_0", "squeezenet1_0", 224,
        # 224 -> conv 7/2 -> 109 -> pool ceil 54 -> 27 -> 13 (floor mode would give 12 at the end)
        stages={"stem": (96, 54, 54), "fire2_4": (256, 27, 27), "fire5_8": (512, 13, 13), "fire9": (512, 13, 13)},
        head=SQUEEZENET_HEAD, maxpool_ceil=True, dropout=(0.5,)),
    Ref("squeezenet1_1", "squeezenet1_1", 224,
        stages={"stem": (64, 55, 55), "fire2_3": (128, 27, 27), "fire4_5": (256, 13, 13), "fire6_9": (512, 13, 13)},
        head=SQUEEZENET_HEAD, maxpool_ceil=True, dropout=(0.5,), run="eval"),
    Ref("alexnet_2012", "alexnet_2012_paper", 227,
        # 227 -> conv 11/4 -> 55 -> pool 27 -> 27 -> pool 13 -> 13 -> pool 6
        stages={"conv1": (96, 27, 27), "conv2": (256, 13, 13), "conv3_5": (256, 6, 6)},
        head=("flatten", "linear", "relu", "dropout", "linear", "relu", "dropout", "linear"),
        maxpool_ceil=False, dropout=(0.5, 0.5), run="eval"),
    Ref("bn_inception", "bn_inception", 224,
        # 3c / 4e reduce the grid; 4d gives 608 and 4e 1056 channels (the code's sums, not the paper's table)
        stages={"stem": (192, 28, 28), "inception3": (576, 14, 14), "inception4": (1056, 7, 7),
                "inception5": (1024, 7, 7)},
        head=("avgpool", "flatten", "linear"), bn=(1e-5, 0.9), maxpool_ceil=True, run="eval"),
    Ref("shufflenet_v1", "shufflenet_v1_g3_1.0x", 224,
        stages={"stem": (24, 56, 56), "stage2": (240, 28, 28), "stage3": (480, 14, 14), "stage4": (960, 7, 7)},
        head=("avgpool", "flatten", "linear"), bn=BN_DEFAULT, maxpool_ceil=False, run="eval"),
]


def convnext(name: str, c: tuple, run: Optional[str]) -> Ref:
    """torchvision's convnext_* as the variant of that name of specs/convnext.yaml (Liu et al. 2022)."""
    return Ref("convnext", name, 224, variant=name, run=run,
               stages={"stem": (c[0], 56, 56), "stage1": (c[0], 56, 56), "stage2": (c[1], 28, 28),
                       "stage3": (c[2], 14, 14), "stage4": (c[3], 7, 7)},
               head=("global_avgpool", "layernorm", "flatten", "linear"))


ZOO += [convnext("convnext_tiny", (96, 192, 384, 768), "eval"),
        convnext("convnext_small", (96, 192, 384, 768), None),
        convnext("convnext_base", (128, 256, 512, 1024), None),
        convnext("convnext_large", (192, 384, 768, 1536), None)]
# RegNet (Radosavovic et al. 2020): every torchvision variant of specs/regnet.yaml, whose stages are
# derived from the six design-space numbers; four stages at strides 4, 8, 16, 32 (named block1..block4
# as torchvision's trunk_output). Front end only beyond 400MF (the checkpoint matrix builds them).
REGNET_LAST = {"regnet_x_400mf": 400, "regnet_x_800mf": 672, "regnet_x_1_6gf": 912, "regnet_x_3_2gf": 1008,
               "regnet_x_8gf": 1920, "regnet_x_16gf": 2048, "regnet_x_32gf": 2520, "regnet_y_400mf": 440,
               "regnet_y_800mf": 784, "regnet_y_1_6gf": 888, "regnet_y_3_2gf": 1512, "regnet_y_8gf": 2016,
               "regnet_y_16gf": 3024, "regnet_y_32gf": 3712, "regnet_y_128gf": 7392}
ZOO += [Ref("regnet", name, 224, variant=name, run="eval" if name == "regnet_x_400mf" else None,
            stages={"block4": (c, 7, 7)}, head=("global_avgpool", "linear"), bn=BN_DEFAULT)
        for name, c in REGNET_LAST.items()]
IDS = [r.id for r in ZOO]


def figure(figures: dict, key: str) -> dict:
    return figures["torchvision"].get(key) or figures["other"][key]


@pytest.fixture(scope="module")
def graphs() -> dict:
    cache: dict = {}

    def get(spec: str, variant: Optional[str] = None):
        if (spec, variant) not in cache:
            cache[spec, variant] = netspec.lower(netspec.load(SPECS / f"{spec}.yaml", variant=variant))
        return cache[spec, variant]

    return get


# --------------------------------------------------------------------------- front end

@pytest.mark.parametrize("ref", ZOO, ids=IDS)
def test_counts_match_the_reference_figures(ref, figures, graphs):
    G, fig = graphs(ref.spec, ref.variant), figure(figures, ref.figure)
    assert G.graph["input_shape"] == (3, ref.resolution, ref.resolution)
    assert costs.total_params(G) == fig["params"]
    if "buffers" in fig:
        assert costs.total_buffers(G) == fig["buffers"]
    if "macs" in fig:
        assert fig["resolution"] == ref.resolution
        assert costs.total_macs(G) == fig["macs"]
    if ref.aux_figure:
        aux = figures["torchvision"][ref.aux_figure]
        assert costs.total_params(G, include_aux=True) == aux["params"]
        assert costs.total_buffers(G, include_aux=True) == aux["buffers"]
    assert len(G.graph["outputs"]) == 1 + ref.aux_heads


@pytest.mark.parametrize("ref", ZOO, ids=IDS)
def test_stage_shapes_and_head_order(ref, graphs):
    G = graphs(ref.spec, ref.variant)
    shapes = {p.name: tuple(p.output_shape) for p in costs.parts(G)}
    assert {name: shapes.get(name) for name in ref.stages} == ref.stages
    head = tuple(d["op"] for _, d in G.nodes(data=True) if d["stage"] == "head")
    assert head == ref.head
    assert G.nodes[G.graph["outputs"]["logits"]]["shape"] == (1000,)


def test_googlenet_keeps_torchvision_quirks(graphs):
    G = graphs("googlenet")
    # the "5x5" branch is a 3x3 (vision#906), maxpool4 is 2x2 / 2
    assert G.nodes["stages.inception4.blocks.inception4a.branch3.conv"]["attrs"]["kernel"] == (3, 3)
    assert G.nodes["stages.inception4.blocks.maxpool4"]["attrs"]["kernel"] == (2, 2)
    assert G.graph["train"]["aux_weights"] == {"aux1": 0.3, "aux2": 0.3}


def test_googlenet_with_the_papers_5x5_branch(figures):
    """k5: 5 turns the quirk off: each "5x5" conv gains (25 - 9) * c5r * c5 weights (no bias)."""
    G = netspec.lower(netspec.load(SPECS / "googlenet.yaml", overrides=["defaults.inception_v1.k5=5"]))
    c5r_c5 = [16 * 32, 32 * 96, 16 * 48, 24 * 64, 24 * 64, 32 * 64, 32 * 128, 32 * 128, 48 * 128]  # 3a .. 5b
    assert costs.total_params(G) == figures["torchvision"]["googlenet"]["params"] + 16 * sum(c5r_c5)
    assert G.nodes["stages.inception5.blocks.inception5b.branch3.conv"]["attrs"]["pad"] == (2, 2, 2, 2)


def test_shufflenet_v1_unit_reports_indivisible_groups(write_spec):
    """out 252: the bottleneck is 252 // 4 = 63 channels, not a multiple of g = 6."""
    path = write_spec("""
        name: bad_shuffle
        input: {size: 32}
        stem: [{type: conv_bn_act, out: 24, stride: 2}]
        stages:
          - blocks: [{type: shufflenet_v1_unit, out: 252, groups: 6, stride: 2}]
        """)
    with pytest.raises(netspec.SpecError) as err:
        netspec.lower(netspec.load(path))
    text = str(err.value)
    assert "not divisible by groups" in text and "shufflenet_v1_unit" in text and "spec.yaml:5" in text


def test_inception_v3_records_its_training_recipe(graphs):
    train = graphs("inception_v3").graph["train"]
    assert train["label_smoothing"] == 0.1 and train["optimizer"]["type"] == "rmsprop"
    assert train["grad_clip"] == 2.0 and train["aux_weights"] == {"AuxLogits": 0.4}


# ShuffleNet v1 family (architectures.md 6.1): groups, stem width, stage widths
SHUFFLENET_V1 = {"g3_0.5x": (3, 12, 120, 240, 480), "g3_1.5x": (3, 24, 360, 720, 1440),
                 "g3_2.0x": (3, 48, 480, 960, 1920), "g8_0.5x": (8, 16, 192, 384, 768),
                 "g8_1.0x": (8, 24, 384, 768, 1536), "g8_2.0x": (8, 48, 768, 1536, 3072),
                 "g1_1.0x": (1, 24, 144, 288, 576), "g2_1.0x": (2, 24, 200, 400, 800),
                 "g4_1.0x": (4, 24, 272, 544, 1088)}


@pytest.mark.parametrize("key", SHUFFLENET_V1)
def test_shufflenet_v1_family_variants(key, figures, graphs):
    g, stem, c2, c3, c4 = SHUFFLENET_V1[key]
    G = graphs("shufflenet_v1", key)
    assert costs.total_params(G) == figures["other"][f"shufflenet_v1_{key}"]["params"]
    widths = [p.output_shape[0] for p in costs.parts(G)][:4]
    assert widths == [stem, c2, c3, c4]
    # g = 1 has nothing to shuffle
    assert any(d["op"] == "channel_shuffle" for _, d in G.nodes(data=True)) == (g > 1)


def test_vgg16_layer_order_follows_cfg_d(graphs):
    """Conv weights in creation order are torchvision's cfgs["D"] (int: 3x3 conv to that width)."""
    cfg_d = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    expected, c_in = [], 3
    for v in cfg_d:
        if v != "M":
            expected.append((v, c_in, 3, 3))
            c_in = v
    expected += [(4096, 512 * 7 * 7), (4096, 4096), (1000, 4096)]
    G = graphs("vgg", "vgg16")
    got = [d["weights"]["weight"] for _, d in G.nodes(data=True) if d["op"] in ("conv2d", "linear")]
    assert got == expected


def test_alexnet_2012_is_the_two_tower_paper_network(graphs):
    G = graphs("alexnet_2012")
    groups = [d["attrs"]["groups"] for _, d in G.nodes(data=True) if d["op"] == "conv2d"]
    assert groups == [1, 2, 1, 2, 2]  # conv2, conv4, conv5 stay on their GPU
    lrn = [d["attrs"] for _, d in G.nodes(data=True) if d["op"] == "lrn"]
    # paper k=2, n=5, alpha=1e-4, beta=0.75; PyTorch divides alpha by n: 1e-4 * 5
    assert lrn == [{"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}] * 2


# --------------------------------------------------------------------------- torch

def _modules_of(model, cls):
    return [m for m in model.modules() if isinstance(m, cls)]


@pytest.mark.parametrize("ref", [r for r in ZOO if r.run], ids=[r.id for r in ZOO if r.run])
def test_built_module_is_the_reference(ref, figures):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = netspec.build(SPECS / f"{ref.spec}.yaml", variant=ref.variant)
    fig = figure(figures, ref.aux_figure or ref.figure)
    assert sum(p.numel() for p in model.parameters()) == fig["params"]
    if "buffers" in fig:
        assert sum(b.numel() for b in model.buffers()) == fig["buffers"]

    norms = _modules_of(model, nn.BatchNorm2d)
    assert {(m.eps, m.momentum) for m in norms} == ({ref.bn} if ref.bn else set())
    pools = _modules_of(model, nn.MaxPool2d)
    assert {m.ceil_mode for m in pools} == ({ref.maxpool_ceil} if ref.maxpool_ceil is not None else set())
    assert tuple(m.p for m in _modules_of(model, nn.Dropout)) == ref.dropout

    x = torch.randn(2 if ref.run == "train" else 1, 3, ref.resolution, ref.resolution)
    if ref.run == "train":
        model.train()
        out = model(x)
        outs = out if ref.aux_heads else (out,)
        assert isinstance(out, tuple) == bool(ref.aux_heads) and len(outs) == 1 + ref.aux_heads
        assert all(o.shape == (2, 1000) for o in outs)
        sum(o.square().mean() for o in outs).backward()
        assert all(p.grad is not None for p in model.parameters()), "some parameters are not used"
    if ref.run == "eval" or ref.aux_heads:
        model.eval()
        with torch.no_grad():
            out = model(x[:1])
        assert isinstance(out, torch.Tensor) and out.shape == (1, 1000)  # aux heads only in training


@pytest.mark.parametrize("aux", [False, True])
def test_googlenet_parameters_follow_torchvision_registration_order(aux):
    """Inception(in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) registers branch1,
    branch2 (1x1, 3x3), branch3 (1x1, "5x5" = 3x3), branch4 (pool, 1x1): its conv weights come
    in that order, each followed by its BN's weight and bias. GoogLeNet registers aux1 and aux2
    (InceptionAux: conv 1x1 -> 128, fc1 2048 -> 1024, fc2 1024 -> classes) after inception5b and
    before fc."""
    pytest.importorskip("torch")
    table = {  # architectures.md section 3.1 (= the paper's Table 1)
        "inception3a": (192, 64, 96, 128, 16, 32, 32), "inception3b": (256, 128, 128, 192, 32, 96, 64),
        "inception4a": (480, 192, 96, 208, 16, 48, 64), "inception4b": (512, 160, 112, 224, 24, 64, 64),
        "inception4c": (512, 128, 128, 256, 24, 64, 64), "inception4d": (512, 112, 144, 288, 32, 64, 64),
        "inception4e": (528, 256, 160, 320, 32, 128, 128), "inception5a": (832, 256, 160, 320, 32, 128, 128),
        "inception5b": (832, 384, 192, 384, 48, 128, 128),
    }
    expected = [(64, 3, 7, 7), (64, 64, 1, 1), (192, 64, 3, 3)]  # conv1, conv2, conv3
    for c_in, c1, c3r, c3, c5r, c5, pp in table.values():
        expected += [(c1, c_in, 1, 1), (c3r, c_in, 1, 1), (c3, c3r, 3, 3), (c5r, c_in, 1, 1), (c5, c5r, 3, 3),
                     (pp, c_in, 1, 1)]
    if aux:
        for c_in in (512, 528):  # aux1 on inception4a, aux2 on inception4d
            expected += [(128, c_in, 1, 1), (1024, 2048), (1000, 1024)]
    expected.append((1000, 1024))  # fc
    model = netspec.build(SPECS / "googlenet.yaml", aux=aux)
    shapes = [tuple(p.shape) for p in model.parameters()]
    weights = [s for s in shapes if len(s) in (2, 4)]
    assert weights == expected
    # every conv is followed by its BN's weight and bias (no conv bias)
    for i, s in enumerate(shapes[:-2]):
        if len(s) == 4:
            assert shapes[i + 1] == shapes[i + 2] == (s[0],)
