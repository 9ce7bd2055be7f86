"""RepVGG (Ding et al. 2021): the training-time spec against timm through a checkpoint, the paper's
parameter counts, and `--optimize`'s structural re-parameterisation (one 3x3 conv per block, equal to
the training-time module in eval mode), which is a pass over the IR for any spec with the pattern."""
from __future__ import annotations

import pytest

import netspec
from conftest import SPECS
from netspec.analysis import costs
from netspec.optimize import describe, inference_graph, parallel_branches

torch = pytest.importorskip("torch")

VARIANTS = ["repvgg_a0", "repvgg_a1", "repvgg_a2", "repvgg_b0", "repvgg_b1"]


def graph(variant, res=None):
    return netspec.lower(netspec.load(SPECS / "repvgg.yaml", variant=variant, res=res))


def randomise_norms(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0, 0.2, generator=gen)
    return model


@pytest.mark.parametrize("variant", VARIANTS)
def test_counts_are_the_papers_and_timms(variant, figures):
    fig = figures["other"][variant]
    G = graph(variant)
    assert costs.total_params(G) == fig["params"] and costs.total_buffers(G) == fig["buffers"]
    assert costs.total_macs(G) == fig["macs"]
    # the paper's Table 4 in millions (train-time and inference-time parameters)
    assert round(costs.total_params(G) / 1e6, 2) == pytest.approx(fig["paper_train_params_m"], abs=0.011)
    H = inference_graph(G)
    deploy = sum(n for d in H.nodes.values() for n in (torch.Size(s).numel() for s in d["weights"].values()))
    conv_bias = sum(d["attrs"]["out"] for d in H.nodes.values() if d["op"] == "conv2d" and "bias" not in d["weights"])
    assert deploy + conv_bias == fig["deploy_params"]
    assert round(fig["deploy_params"] / 1e6, 2) == pytest.approx(fig["paper_deploy_params_m"], abs=0.011)


@pytest.mark.parametrize("variant", [pytest.param(v, marks=pytest.mark.slow) if v == "repvgg_b1" else v
                                     for v in VARIANTS])
def test_equals_timm_through_a_checkpoint(variant, tmp_path):
    _torchvision_ready()
    timm = pytest.importorskip("timm")
    ref = randomise_norms(timm.create_model(variant))
    path = tmp_path / f"{variant}.pth"
    torch.save(ref.state_dict(), path)
    ours = netspec.build(SPECS / "repvgg.yaml", variant=variant, weights=path)  # matched by order
    x = torch.randn(2, 3, 32, 32)
    for train in (False, True):
        ref.train(train), ours.train(train)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)
    for a, b in zip(ours.state_dict().values(), ref.state_dict().values()):
        torch.testing.assert_close(a, b)  # batch statistics moved the same way


def _torchvision_ready() -> bool:
    from netspec._torchvision import import_torchvision
    import_torchvision()  # timm imports torchvision; this makes it importable beside the CPU torch
    return True


@pytest.mark.parametrize("variant", VARIANTS)
def test_optimize_reparameterises_every_block_into_one_conv(variant):
    G = graph(variant, res=32)
    H = inference_graph(G)
    blocks = [s for s, info in G.graph["scopes"].items() if info.get("type") == "repvgg_block"]
    convs = [n for n in H if H.nodes[n]["op"] == "conv2d"]
    assert len(convs) == len(blocks) == describe(G, H)["branches_merged"]
    assert all(H.nodes[c]["attrs"]["kernel"] == (3, 3) and H.nodes[c]["attrs"]["bias"] for c in convs)
    assert not any(H.nodes[n]["op"] in ("add", "batchnorm") for n in H)
    model = randomise_norms(netspec.compile(G)).eval()
    from netspec.backends.torch_optimize import optimize_module
    fast = optimize_module(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want, got = model(x), fast(x)
    assert ((want - got).abs().max() / want.abs().max()).item() <= 1e-5


PATTERN = """
        name: branches
        input: {channels: 3, size: 16}
        num_classes: 10
        blocks:
          three:
            params: {out: {type: int}, groups: {type: int, default: 1}}
            body:
              - {type: conv2d, name: k5, out: $out, kernel: 5, padding: 2, groups: $groups}
              - {type: conv2d, name: k3, inputs: input, out: $out, kernel: 3, padding: 1, groups: $groups}
              - {type: batchnorm, name: bn3}
              - {type: conv2d, name: k1, inputs: input, out: $out, kernel: 1, groups: $groups, bias: false}
              - {type: batchnorm, name: bn, inputs: input, when: $in == $out}
              - {type: add, inputs: "['k5', 'bn3', 'k1', 'bn'] if $in == $out else ['k5', 'bn3', 'k1']"}
              - {type: relu}
        stem:
          - {type: three, out: 8}
        stages:
          - blocks:
              - {type: three, name: b, out: 8, groups: 2}
              - {type: conv2d, name: shifted, out: 8, kernel: 2, padding: tf_same}   # not centred: stays
              - {type: conv2d, name: side, inputs: b, out: 8, kernel: 1}
              - {type: add, inputs: [shifted, side]}
        head:
          - {type: global_avgpool, keepdim: false}
          - {type: linear, out: $num_classes}
        """


def test_any_spec_with_the_pattern_is_reparameterised(write_spec):
    G = netspec.lower(netspec.load(write_spec(PATTERN)))
    H = inference_graph(G)
    assert set(H.graph["reparameterized"]) == {"stem.0.k5", "stages.0.blocks.b.k5"}
    assert "stages.0.blocks.shifted" in H and "stages.0.blocks.side" in H  # not centred: not merged
    assert parallel_branches(H) == {}  # nothing left to merge
    model = randomise_norms(netspec.compile(G), seed=3).eval()
    from netspec.backends.torch_optimize import optimize_module
    fast = optimize_module(model, channels_last=False)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        want, got = model(x), fast(x)
    assert ((want - got).abs().max() / want.abs().max()).item() <= 1e-5
