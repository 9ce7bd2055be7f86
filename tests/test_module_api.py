"""The compiled module behaves like a hand-written one: parts are modules that compute their piece,
replaced submodules run, hooks fire in every mode, and the ecosystem's tools (fx, torchvision's
feature extraction, torch.export, TorchScript, ONNX, torchinfo) work on it.

Zoo models are built once per module at small inputs (`_build`), with the 4096-wide classifier
layers of AlexNet / VGG narrowed (their width is not what is tested here)."""
from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import warnings
from pathlib import Path

import pytest
import yaml

import netspec
from conftest import ROOT, SPECS
from netspec.ops import get_op

torch = pytest.importorskip("torch")
nn = torch.nn

ZOO = sorted(p.stem for p in SPECS.glob("*.yaml"))
MODES = ("train", "eval", "no_grad", "inference_mode")


def _narrow(spec: str) -> list[str]:
    head = yaml.safe_load((SPECS / f"{spec}.yaml").read_text()).get("head") or []
    return [f"head.{i}.out=256" for i, e in enumerate(head) if e.get("type") == "linear" and e.get("out") == 4096]


@functools.lru_cache(maxsize=None)
def _graph(spec: str, variant: str | None = None):
    over = _narrow(spec)
    G = netspec.lower(netspec.load(SPECS / f"{spec}.yaml", overrides=over, variant=variant))
    size = G.graph["input_shape"][1]
    for res in (64, 80):  # small inputs keep the tests quick (Inception v3 needs 75 px or more)
        if res >= size:
            break
        try:
            return netspec.lower(netspec.load(SPECS / f"{spec}.yaml", overrides=over + [f"input.size={res}"],
                                              variant=variant))
        except netspec.SpecError:
            continue
    return G  # a fixed-size pool (BN-Inception's 7x7): its own size


def _build(spec: str, variant: str | None = None):
    return netspec.compile(_graph(spec, variant))


def _input(model, batch: int = 2):
    return torch.randn(batch, *model.input_shape, generator=torch.Generator().manual_seed(0))


def _run(model, x, mode: str):
    """One forward in `mode`; the logits (the main output in training)."""
    model.train(mode == "train")
    torch.manual_seed(3)  # the same dropout / stochastic-depth draws for every call in a mode
    if mode == "no_grad":
        with torch.no_grad():
            out = model(x)
    elif mode == "inference_mode":
        with torch.inference_mode():
            out = model(x)
    else:
        out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    return out.detach().clone()


def _leaf_of(G, ops: tuple[str, ...], last: bool = False) -> str:
    """The first (or last) node of the main network whose op is the first of `ops` the network has."""
    main = [n for n in G.nodes if not G.nodes[n]["aux"] and n != "input"]
    for op in ops:
        found = [n for n in main if get_op(G.nodes[n]["op"]).name == op]
        if found:
            return found[-1] if last else found[0]
    raise LookupError(ops)


def _classifier(G) -> tuple[str, nn.Module]:
    """The classifier (the last linear / conv / RBF layer before the logits) and a 7-class replacement."""
    logits = G.graph["outputs"]["logits"]
    main = [n for n in G.nodes if not G.nodes[n]["aux"] and n != "input"]
    node = [n for n in main if get_op(G.nodes[n]["op"]).name in ("linear", "conv2d", "rbf") and n != logits
            or n == logits and get_op(G.nodes[n]["op"]).name in ("linear", "conv2d", "rbf")][-1]
    d = G.nodes[node]
    a = d["attrs"]
    if d["op"] in ("conv2d", "conv"):
        t, _, l, _ = a["pad"]
        return node, nn.Conv2d(a["in_channels"], 7, a["kernel"], a["stride"], (t, l))
    return node, nn.Linear(d["in_shapes"][0][0], 7)


def _set(model, path: str, module: nn.Module) -> nn.Module:
    parent, _, name = path.rpartition(".")
    owner = model.get_submodule(parent)
    old = owner._modules[name]
    setattr(owner, name, module)
    return old


@pytest.mark.parametrize("spec", ZOO)
def test_zoo_parts_hooks_and_replacement_in_every_mode(spec):
    """Points 2-3 of the module contract on every zoo spec: forward hooks and pre-hooks on a leaf,
    a block, a stage, the stem / head and the network fire once per forward in every mode (global
    ones too); an activation replaced by Identity changes the output; a 7-class classifier gives
    (B, 7) in every mode; putting the modules back restores the fast path and its output."""
    G = _graph(spec)
    model = _build(spec)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():  # eval-mode BN that is not the identity (as after training) ...
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0, 0.2, generator=gen)
                m.momentum = 0.0  # ... and training forwards leave the running statistics as they are
    x = _input(model)
    before = {mode: _run(model, x, mode) for mode in MODES}
    assert model.fast_path_active()

    # hooks: every part kind, and a leaf the no-grad fast path would replace by an in-place twin
    watched = ["", "stages", G.graph["stages"][0], "head"]
    watched += [s for s, info in G.graph["scopes"].items() if info["kind"] == "block" and not info["aux"]][:1]
    watched += [_leaf_of(G, ("batchnorm", "relu", "conv2d"))]
    if "stem" in G.graph["scopes"] and any(G.nodes[n]["part"] == "stem" for n in G.nodes):
        watched.append("stem")
    counts: dict = {}
    handles = []
    for path in watched:
        m = model.get_submodule(path)
        handles.append(m.register_forward_pre_hook(lambda mod, args, p=path: counts.__setitem__(("pre", p), counts.get(("pre", p), 0) + 1)))
        handles.append(m.register_forward_hook(lambda mod, args, out, p=path: counts.__setitem__(("post", p), counts.get(("post", p), 0) + 1)))
    seen_globally = []
    target = model.get_submodule(watched[-1])
    handles.append(nn.modules.module.register_module_forward_hook(
        lambda mod, args, out: seen_globally.append(1) if mod is target else None))
    try:
        assert not model.fast_path_active()
        for mode in MODES:
            counts.clear()
            seen_globally.clear()
            hooked = _run(model, x, mode)
            assert counts == {(k, p): 1 for p in watched for k in ("pre", "post")}, (spec, mode)
            assert len(seen_globally) == 1, (spec, mode)
            assert torch.equal(hooked, before[mode]), (spec, mode)  # the nested path computes the same
    finally:
        for h in handles:
            h.remove()
    assert model.fast_path_active()

    # an activation -> Identity changes the output (with gradients, and on the no-grad path)
    act = _leaf_of(G, ("relu", "relu6", "hardswish", "silu", "gelu", "scaled_tanh"))
    old = _set(model, act, nn.Identity())
    assert not model.fast_path_active()
    for mode in ("train", "inference_mode"):
        assert not torch.equal(_run(model, x, mode), before[mode]), (spec, mode, act)
    _set(model, act, old)

    # the classifier -> 7 classes
    node, new = _classifier(G)
    old = _set(model, node, new)
    for mode in MODES:
        out = _run(model, x, mode)
        assert out.shape == (2, 7), (spec, mode, node)
    _set(model, node, old)
    assert model.fast_path_active()  # modules put back: the in-place fast path runs again
    assert torch.equal(_run(model, x, "inference_mode"), before["inference_mode"]), spec


@pytest.fixture(scope="module")
def resnet18():
    return _build("resnet", "resnet18").eval()


def test_parts_compute_their_piece_and_index_in_order(resnet18):
    model = resnet18
    x = _input(model)
    assert [type(m).__name__ for m in (model.stem, model.stages, model.stages[0], model.head)] == \
        ["Stem", "Stages", "Stage", "Head"]
    assert model.stages[1] is model.stages.layer2 and model.stages.layer1.blocks[0] is model.stages.layer1.blocks.get_submodule("0")
    assert len(model.stages) == 4 and list(model.stages) == [model.stages[i] for i in range(4)]
    with torch.no_grad():
        h = model.stem(x)
        for stage in model.stages:
            h = stage(h)
        assert h.shape == (2, 512, 2, 2)
        assert torch.equal(model.head(h), model(x))
        # a block is a module of one tensor: the stage is its blocks, one after another
        h0 = model.stem(x)
        assert torch.equal(model.stages.layer1.blocks[1](model.stages.layer1.blocks[0](h0)), model.stages.layer1(h0))
    assert model.stages.layer1.blocks[0].netspec_inputs == ("stem.maxpool",)
    assert model.stages.layer1.blocks[0].netspec_outputs == ("stages.layer1.blocks.0.relu",)


def test_a_replaced_block_runs(resnet18):
    model = resnet18
    x = _input(model)
    with torch.no_grad():
        ref = model(x)

    class Twice(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, x):
            return self.block(self.block(x))

    block = model.stages.layer2.blocks[1]
    model.stages.layer2.blocks[1] = Twice(block)  # noqa: index assignment goes through setattr below
    try:
        with torch.no_grad():
            out = model(x)
            h = model.stages.layer1(model.stem(x))
            h = block(block(model.stages.layer2.blocks[0](h)))
            for stage in list(model.stages)[2:]:
                h = stage(h)
            assert torch.equal(out, model.head(h)) and not torch.equal(out, ref)
    finally:
        model.stages.layer2.blocks[1] = block
    with torch.no_grad():
        assert torch.equal(model(x), ref)


def test_several_outputs_and_inputs_follow_the_documented_order():
    """GoogLeNet's stages return (their last value, the aux heads' inputs); DenseNet's layers take
    every earlier feature map in evaluation order."""
    G = _graph("googlenet")
    model = netspec.compile(G)
    assert model.stages.netspec_outputs == (model.head.netspec_inputs[0],) + tuple(
        model.get_submodule(a).netspec_inputs[0] for a in ("stages.inception5.aux1", "stages.inception5.aux2"))
    model.eval()
    x = _input(model)
    with torch.no_grad():
        main, aux1_in, aux2_in = model.stages(model.stem(x))
        assert torch.equal(model.head(main), model(x))
        model.train()
        torch.manual_seed(0)
        logits, aux1, aux2 = model(x)
        torch.manual_seed(0)
        feats = model.stages(model.stem(x))
        assert torch.equal(model.stages.inception5.aux1(feats[1]), aux1)
    dense = netspec.compile(_graph("densenet"))
    layer = dense.stages.denseblock1.blocks.layer[2]
    assert layer.netspec_inputs == ("stem.pool0", "stages.denseblock1.blocks.layer.0.conv2",
                                    "stages.denseblock1.blocks.layer.1.conv2")


def test_grad_cam_on_the_last_stage(resnet18):
    model = resnet18
    x = _input(model, 1)
    saved = {}
    stage = model.stages[-1]
    h1 = stage.register_forward_hook(lambda m, args, out: saved.__setitem__("act", out))
    h2 = stage.register_full_backward_hook(lambda m, gin, gout: saved.__setitem__("grad", gout[0]))
    try:
        model.eval()
        logits = model(x)
        cls = int(logits.argmax())
        logits[0, cls].backward()
    finally:
        h1.remove(), h2.remove()
    act, grad = saved["act"], saved["grad"]
    cam = torch.relu((grad.mean((2, 3), keepdim=True) * act).sum(1))
    # the same, by calling the parts
    feats = model.stages(model.stem(x)).detach().requires_grad_()
    score = model.head(feats)[0, cls]
    (g,) = torch.autograd.grad(score, feats)
    assert act.shape == (1, 512, 2, 2) and torch.allclose(act, feats) and torch.allclose(grad, g)
    assert cam.shape == (1, 2, 2) and cam.sum() > 0


def test_full_backward_hook_on_a_block_in_training(resnet18):
    model = resnet18
    x = _input(model)
    calls = []
    block = model.stages.layer3.blocks[0]
    h = block.register_full_backward_hook(lambda m, gin, gout: calls.append((gin[0].shape, gout[0].shape)))
    try:
        model.train()
        model(x).sum().backward()
    finally:
        h.remove()
        model.eval()
        model.zero_grad()
    assert calls == [((2, 128, 8, 8), (2, 256, 4, 4))]


def test_deepcopy_and_pickle_keep_parts_and_the_fast_path(resnet18, tmp_path):
    import copy
    import subprocess
    import sys
    x = _input(resnet18, 1)
    with torch.no_grad():
        ref = resnet18(x)
    twin = copy.deepcopy(resnet18)  # e.g. an EMA copy
    assert twin.fast_path_active() and twin.stages[0] is not resnet18.stages[0]
    twin.head.fc = nn.Linear(512, 3)
    assert not twin.fast_path_active() and resnet18.fast_path_active()
    with torch.no_grad():
        assert copy.deepcopy(twin)(x).shape == (1, 3)  # a copy of a changed tree runs the nested forward
    torch.save({"model": resnet18, "x": x, "ref": ref}, tmp_path / "m.pt")
    code = ("import torch, sys; d = torch.load(sys.argv[1], weights_only=False)\n"
            "with torch.no_grad(): print(torch.equal(d['model'](d['x']), d['ref']), d['model'].fast_path_active(), "
            "type(d['model'].stages[0]).__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.pt")], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["True", "True", "Stage"], out.stderr


TOOL_SPECS = ["resnet", "mobilenet_v2", "googlenet", "densenet", "shufflenet_v2", "efficientnet", "lenet5_1998"]


@pytest.mark.parametrize("spec", TOOL_SPECS)
def test_fx_symbolic_trace_and_feature_extraction(spec):
    from netspec._torchvision import import_torchvision
    import_torchvision()
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    G = _graph(spec)
    model = netspec.compile(G).eval()
    x = _input(model)
    with torch.no_grad():
        ref = model(x)
        traced = torch.fx.symbolic_trace(model)
        assert torch.equal(traced(x), ref)
        train_nodes, eval_nodes = get_graph_node_names(model)
        leaves = [n for n in G.nodes if n != "input" and not G.nodes[n]["aux"]
                  and get_op(G.nodes[n]["op"]).name != "drop_path"]  # returns its input in eval: no node
        # node names are the spec's scopes (netspec's own small layers are traced through: `add.add`)
        assert all(n in eval_nodes or any(e.startswith(n + ".") for e in eval_nodes) for n in leaves)
        assert any(G.nodes[n]["aux"] for n in G) == any(n.startswith(tuple(
            s for s, i in G.graph["scopes"].items() if i["kind"] == "aux")) for n in train_nodes)
        last_stage = G.graph["stages"][-1]
        extractor = create_feature_extractor(model, {last_stage: "features", G.graph["outputs"]["logits"]: "logits"})
        out = extractor(x)
        assert torch.equal(out["logits"], ref)
        feats = model.stages(model.stem(x) if "stem" in model._modules else x)
        feats = feats[0] if isinstance(feats, tuple) else feats
        assert torch.equal(out["features"], feats)


def test_export_torchscript_and_onnx(resnet18, tmp_path):
    model = resnet18
    x = _input(model)
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.export.export(model, (x,))
        traced = torch.jit.trace(model, x)
    assert torch.allclose(exported.module()(x), ref, atol=1e-5)
    names = {n for n, _ in traced.named_modules()}
    assert {"stages.layer4.blocks.1", "head.fc"} <= names  # the part hierarchy survives tracing
    with torch.no_grad():
        assert torch.equal(traced(x), ref)
    onnx = pytest.importorskip("onnxruntime")
    from netspec.interop import export_onnx
    path = tmp_path / "m.onnx"
    export_onnx(model, model.graph, path)
    sess = onnx.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert abs(got - ref.numpy()).max() < 1e-4
    assert model.fast_path_active()  # exporters leave no hook behind


@pytest.mark.parametrize("spec, variant, tv_name", [("resnet", "resnet50", "resnet50"),
                                                    ("mobilenet_v2", None, "mobilenet_v2")])
def test_torchinfo_matches_torchvision(spec, variant, tv_name):
    """Same total parameters; the same blocks, one row each, in the same order with the same
    parameter counts (netspec's stem / stages / head parts are one level torchvision lacks)."""
    torchinfo = pytest.importorskip("torchinfo")
    from netspec._torchvision import import_torchvision
    tv = getattr(import_torchvision().models, tv_name)()
    ours = netspec.build(SPECS / f"{spec}.yaml", variant=variant)
    size = (1, 3, 64, 64)
    a = torchinfo.summary(ours, input_size=size, verbose=0, depth=10)
    b = torchinfo.summary(tv, input_size=size, verbose=0, depth=10)
    assert a.total_params == b.total_params and a.trainable_params == b.trainable_params
    assert a.total_mult_adds == b.total_mult_adds

    block_types = {"resnet50": ("Bottleneck",), "mobilenet_v2": ("InvertedResidual",)}[tv_name]
    theirs = [(r.num_params, r.output_size) for r in b.summary_list if r.class_name in block_types]
    G = ours.graph
    blocks = {s for s, i in G.graph["scopes"].items() if i["kind"] == "block" and i["parent"].endswith(".blocks")}
    mine = [(r.num_params, r.output_size) for r in a.summary_list
            if getattr(r.module, "netspec_scope", None) in blocks]
    assert len(mine) == len(theirs) > 0 and mine == theirs


DOC_EXAMPLE = re.compile(r"```python\n((?:(?!```).)*?)```\n\n```text\n(.*?)```", re.S)


def run_doc_examples(path) -> list[tuple[str, str, str]]:
    """Run a page's ```python blocks in order, in one namespace, from the repository root:
    [(code, what the page shows after it, what it prints now)]."""
    from netspec._torchvision import import_torchvision
    import_torchvision()  # so that the pages' plain `from torchvision...` imports work here
    namespace: dict = {}
    results = []
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for code, shown in DOC_EXAMPLE.findall(path.read_text()):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(code, str(path), "exec"), namespace)  # the page's own code, as a reader runs it
            results.append((code, shown, out.getvalue()))
    finally:
        os.chdir(cwd)
    return results


@pytest.mark.parametrize("page", ["docs/module.md", "docs/interop.md", "README.md"])
def test_doc_examples_print_what_the_page_shows(page):
    results = run_doc_examples(ROOT / page)
    assert results
    for code, shown, printed in results:
        assert printed == shown, f"{page} is stale at:\n{code}\n(python tests/test_module_api.py {page} pastes the output)"


if __name__ == "__main__":  # python tests/test_module_api.py PAGE: paste what the page's examples print now
    import sys
    page = Path(sys.argv[1]).resolve()
    text = page.read_text()
    for code, shown, printed in run_doc_examples(page):
        text = text.replace(f"```python\n{code}```\n\n```text\n{shown}```", f"```python\n{code}```\n\n```text\n{printed}```")
    page.write_text(text)


def test_parts_refuse_children_that_feed_each_other_both_ways():
    """No order of whole-child calls computes `a` and `b` here (a.x -> b.y -> a.z)."""
    import networkx as nx
    from netspec.parts import part_plans

    G = nx.DiGraph(outputs={"logits": "a.z"})
    for n, inputs in (("input", []), ("a.x", ["input"]), ("b.y", ["a.x"]), ("a.z", ["b.y"])):
        G.add_node(n, inputs=inputs, aux=False)
        for i in inputs:
            G.add_edge(i, n)
    with pytest.raises(ValueError, match=r"part 'network': its children \['a', 'b'\] read each other's values"):
        part_plans(G)
    G.remove_edge("b.y", "a.z")  # a.z reads a.x instead: a, then b (b's value feeds nothing: not computed)
    G.nodes["a.z"]["inputs"] = ["a.x"]
    G.add_edge("a.x", "a.z")
    train, evaluation, plans = part_plans(G)
    assert [c.child for c in train.calls] == ["a"] and plans["a"].outputs == ("a.z",)
