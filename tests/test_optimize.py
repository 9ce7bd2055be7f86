"""The IR passes of netspec/optimize.py and what the torch side builds from them.

In-place: decided over the IR (front end, no torch), and a build with the pass gives
bit-identical outputs and gradients to one without it. Inference-optimised build: its
logits equal the eval-mode module's within 1e-5 (relative) for every zoo spec.
"""
from __future__ import annotations

import pytest

import netspec
from conftest import SPECS
from netspec.optimize import describe, foldable_bn, inference_graph, inference_inplace_nodes, inplace_nodes

RESIDUAL = """
    name: residual
    input: {channels: 3, size: 8}
    num_classes: 4
    stem:
      - {type: conv2d, name: conv, out: 8, kernel: 3, padding: 1, bias: false}
      - {type: batchnorm, name: bn}
      - {type: relu, name: act}
      - {type: conv2d, name: branch, out: 8, kernel: 1}
      - {type: sigmoid, name: gate}
      - {type: relu, name: after_sigmoid}
      - {type: add, name: sum, inputs: [act, after_sigmoid]}
      - {type: relu6, name: tap}
      - {type: conv2d, name: side, out: 8, kernel: 1, inputs: [tap]}
      - {type: relu, name: side_act}
      - {type: add, name: join, inputs: [tap, side_act]}
      - {type: conv2d, name: proj, out: 8, kernel: 1}
      - {type: dropout, name: drop, p: 0.1}
      - {type: add, name: join2, inputs: [join, drop]}
    head:
      - {type: global_avgpool, name: pool, keepdim: false}
      - {type: linear, name: fc, out: $num_classes}
    """


@pytest.fixture
def residual(write_spec):
    return netspec.lower(netspec.load(write_spec(RESIDUAL)))


def test_inplace_decisions_follow_readers_and_autograd(residual):
    ip = inplace_nodes(residual)
    assert ip["stem.act"] == 0            # the BN output is read by the ReLU alone
    assert "stem.after_sigmoid" not in ip  # sigmoid's backward reads its output
    assert "stem.sum" not in ip            # act is also read by branch; after_sigmoid: relu output
    assert ip["stem.tap"] == 0             # add output (its backward reads nothing) read once
    assert ip["stem.side_act"] == 0        # conv output read once
    assert "stem.join" not in ip           # tap has two readers, side_act is a ReLU output
    assert ip["stem.join2"] == 1           # into the dropout's output: proj's, read only through it
    assert "head.fc" not in ip and "stem.gate" not in ip  # no in-place switch


def test_network_input_is_never_overwritten(write_spec):
    G = netspec.lower(netspec.load(write_spec("""
        name: first
        input: {channels: 3, size: 4}
        stem: [{type: relu, name: act}, {type: conv2d, name: c, out: 2, kernel: 1}]
        """)))
    assert inplace_nodes(G) == {}


def test_nograd_decisions_follow_the_last_reader(residual):
    """With gradients off nothing reads a value after its last reader, whatever the op's backward
    would have needed: BN, a ReLU after a sigmoid, adds whose input has an earlier reader too."""
    assert inference_inplace_nodes(residual) == {
        "stem.bn": 0, "stem.act": 0, "stem.after_sigmoid": 0, "stem.sum": 0, "stem.tap": 0,
        "stem.side_act": 0, "stem.join": 0, "stem.join2": 0}


def test_nograd_decisions_respect_views_input_and_outputs(write_spec):
    G = netspec.lower(netspec.load(write_spec("""
        name: views
        input: {channels: 4, size: 4}
        stem:
          - {type: relu, name: first}                     # the caller's tensor: never overwritten
          - {type: conv2d, name: c, out: 4, kernel: 1}
          - {type: chunk, name: left, chunks: 2, index: 0, inputs: [c]}
          - {type: chunk, name: right, chunks: 2, index: 1, inputs: [c]}
          - {type: relu, name: r, inputs: [right]}         # left (same storage) is read later
          - {type: concat, name: cat, inputs: [left, r]}
          - {type: relu, name: after_cat}                  # cat's last reader
          - {type: add, name: twice, inputs: [after_cat, after_cat]}  # one storage, two inputs
        head:
          - {type: flatten, name: flat}
          - {type: relu, name: out}                       # writes into twice, through the view
        """)))
    plan = inference_inplace_nodes(G)
    assert "stem.first" not in plan and "stem.r" not in plan and "stem.twice" not in plan
    assert plan["stem.after_cat"] == 0 and plan["head.out"] == 0


def test_inference_graph_folds_bn_and_drops_identities(residual):
    H = inference_graph(residual)
    assert foldable_bn(residual) == {"stem.bn": "stem.conv"}
    assert "stem.bn" not in H and "stem.drop" not in H
    assert H.nodes["stem.conv"]["attrs"]["bias"] is True and H.nodes["stem.conv"]["folded_bn"] == "stem.bn"
    assert H.nodes["stem.act"]["inputs"] == ["stem.conv"]
    assert H.nodes["stem.join2"]["inputs"] == ["stem.join", "stem.proj"]
    assert residual.nodes["stem.conv"]["attrs"]["bias"] is False  # the source IR is untouched
    assert describe(residual, H) == {"batchnorm_folded": 1, "identities_removed": 1, "branches_merged": 0,
                                     "inplace": len(inference_inplace_nodes(H))}


# --------------------------------------------------------------------------- torch

def _randomise_bn(model):
    import torch
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.5)


INPLACE_CASES = [("mobilenet_v2", 32), ("mobilenet_v3_small", 32), ("efficientnet", 32), ("shufflenet_v2", 32)]


@pytest.mark.parametrize("spec, res", INPLACE_CASES, ids=[c[0] for c in INPLACE_CASES])
def test_inplace_pass_changes_no_output_or_gradient(spec, res):
    torch = pytest.importorskip("torch")
    from netspec.backends.pytorch import compile_graph

    G = netspec.lower(netspec.load(SPECS / f"{spec}.yaml", overrides=[f"input.size={res}"]))
    on, off = compile_graph(G), compile_graph(G, inplace=False)
    assert any(getattr(m, "inplace", False) is not False for m in on.modules())
    assert not any(getattr(m, "inplace", False) not in (False, None) for m in off.modules())
    assert off._infer_nograd is None and on._infer_nograd is not None  # no twins without the pass
    assert list(on.state_dict()) == list(off.state_dict())
    x = torch.randn(2, 3, res, res)
    outs = []
    for model in (on, off):
        model.train()
        torch.manual_seed(1)  # the same dropout / stochastic-depth draws
        out = model(x)
        out.square().mean().backward()
        model.eval()
        with torch.no_grad():
            outs.append((out.detach(), model(x), [p.grad for p in model.parameters()]))
    (a, ea, ga), (b, eb, gb) = outs
    assert torch.equal(a, b) and torch.equal(ea, eb)
    assert all(torch.equal(p, q) for p, q in zip(ga, gb))


def test_nograd_forward_runs_the_inplace_plan_only_when_autograd_is_off(write_spec):
    torch = pytest.importorskip("torch")
    from netspec.backends.torch_layers import BatchNormInPlace

    model = netspec.build(write_spec(RESIDUAL)).eval()
    _randomise_bn(model)
    twins = [m for m in model._infer_nograd.modules()
             if getattr(m, "inplace", None) is not None and m.inplace is not False]  # Add(inplace=0) counts
    assert any(isinstance(m, BatchNormInPlace) for m in model._infer_nograd.modules())
    assert len(twins) == 7  # act, after_sigmoid, sum, tap, side_act, join, join2
    assert not any(isinstance(m, BatchNormInPlace) for m in model.modules())  # the tree is untouched
    assert list(model.state_dict()) == list(netspec.build(write_spec(RESIDUAL)).state_dict())
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = model(x)  # eval with autograd on: differentiable (saliency, input gradients)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        fast = model(x)
        traced = torch.jit.trace(model, x.detach())  # tracers get the ordinary forward
    assert torch.equal(fast, out.detach()) and torch.equal(traced(x.detach()), fast)
    assert "native_batch_norm" not in str(traced.inlined_graph)
    with torch.no_grad():  # .to() converts parameters in place: the twins see the new dtype
        assert model.double()(x.detach().double()).dtype == torch.float64


def _zoo():
    return sorted(p.stem for p in SPECS.glob("*.yaml"))


def _small(spec: str) -> list[str]:
    """Overrides that keep a zoo model quick to build: the 4096-wide classifier layers of AlexNet / VGG
    (most of their 60-140 M parameters) narrowed to 256. Folding does not depend on width."""
    import yaml
    head = yaml.safe_load((SPECS / f"{spec}.yaml").read_text()).get("head") or []
    return [f"head.{i}.out=256" for i, e in enumerate(head) if e.get("type") == "linear" and e.get("out") == 4096]


@pytest.mark.parametrize("spec", _zoo())
def test_optimised_build_equals_the_eval_module(spec):
    torch = pytest.importorskip("torch")
    from netspec.backends.torch_optimize import optimize_module

    G = netspec.lower(netspec.load(SPECS / f"{spec}.yaml", overrides=_small(spec)))
    c, size, _ = G.graph["input_shape"]
    res = min(size, 96)  # small inputs keep the big models quick (Inception v3 needs 75 px or more)
    if res != size:
        try:
            G = netspec.lower(netspec.load(SPECS / f"{spec}.yaml", overrides=_small(spec) + [f"input.size={res}"]))
        except netspec.SpecError:  # a fixed-size pool (BN-Inception's 7x7): its own size
            res = size
    model = netspec.compile(G).eval()
    _randomise_bn(model)
    fast = optimize_module(model)
    x = torch.randn(2, c, res, res)
    x0 = x.clone()
    with torch.inference_mode():
        ref, got = model(x), fast(x)
    # the no-grad forward (in-place plan) gives the autograd-safe forward's values, bit for bit,
    # and leaves the caller's tensor alone
    assert torch.equal(model(x).detach(), ref) and torch.equal(fast(x), got), spec
    assert torch.equal(x, x0)
    scale = ref.abs().max()
    assert (got - ref).abs().max() <= 1e-5 * scale, spec
    assert not any(isinstance(m, torch.nn.Dropout) for m in fast.modules())
    with pytest.raises(RuntimeError, match="inference-only"):
        fast.train()


def test_optimised_build_options_and_api(write_spec):
    torch = pytest.importorskip("torch")
    path = write_spec(RESIDUAL)
    model = netspec.build(path).eval()
    _randomise_bn(model)
    x = torch.randn(1, 3, 8, 8)
    from netspec.backends.torch_optimize import optimize_module
    with torch.inference_mode():
        ref = model(x)
        for kw in ({}, {"channels_last": False}, {"freeze": True}):
            assert torch.allclose(optimize_module(model, **kw)(x), ref, rtol=1e-5, atol=1e-6), kw
    fast = netspec.build(path, optimize=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    with pytest.raises(ValueError, match="optimize=True"):
        netspec.build(path, channels_last=False)


def test_cli_build_optimize(write_spec, tmp_path, capsys):
    pytest.importorskip("torch")
    from netspec.cli import main
    path = write_spec(RESIDUAL)
    out = tmp_path / "fast.pt"
    assert main(["build", str(path), "--optimize", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "optimised for inference: 1 batch norms folded, 1 dropout/identity ops removed" in text
    assert text.rstrip().endswith(f"saved {out}") and "; channels-last" in text
    import torch
    keys = torch.load(out)
    assert "stem.conv.bias" in keys and not any(k.startswith("stem.bn.") for k in keys)
    assert main(["build", str(path), "--no-channels-last"]) == 2
    assert "--no-channels-last needs --optimize" in capsys.readouterr().err
