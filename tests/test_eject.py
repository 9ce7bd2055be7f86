"""`netspec eject`: the standalone file against the compiled module, for every zoo spec.

Each case writes the file, imports it with importlib (netspec itself never runs it), checks that
its state_dict() has the compiled module's keys in the same order, loads the compiled weights with
strict=True, and compares the outputs in eval and in train mode (seeded before each forward, so
dropout and stochastic depth draw the same numbers; aux logits included). Big inputs are avoided:
every network ends in an adaptive or global pool (Inception v3's aux head needs 299 px).
"""
from __future__ import annotations

import ast
import importlib.util

import pytest

import netspec
from conftest import SPECS
from netspec.api import load, lower
from netspec.cli import main
from netspec.eject import eject
from netspec.scale import apply_scaling

torch = pytest.importorskip("torch")

# (spec file, variant, input size); default variants of every zoo file plus one of each family
CASES = {
    "alexnet": ("alexnet.yaml", None, 64),
    "alexnet_2012": ("alexnet_2012.yaml", None, 96),
    "bn_inception": ("bn_inception.yaml", None, None),
    "convnext": ("convnext.yaml", None, 32),
    "densenet": ("densenet.yaml", None, 32),
    "densenet121": ("densenet.yaml", "densenet121", 32),
    "efficientnet": ("efficientnet.yaml", None, 32),
    "efficientnet_b0": ("efficientnet.yaml", "b0", 32),
    "efficientnet_v2": ("efficientnet_v2.yaml", None, 32),
    "googlenet": ("googlenet.yaml", None, 96),
    "inception_v3": ("inception_v3.yaml", None, 299),
    "lenet5": ("lenet5.yaml", None, None),
    "lenet5_1998": ("lenet5_1998.yaml", None, None),
    "mobilenet_v1": ("mobilenet_v1.yaml", None, 64),
    "mobilenet_v2": ("mobilenet_v2.yaml", None, 64),
    "mobilenet_v3_large": ("mobilenet_v3_large.yaml", None, 64),
    "mobilenet_v3_small": ("mobilenet_v3_small.yaml", None, 64),
    "regnet": ("regnet.yaml", None, 32),
    "regnet_y_400mf": ("regnet.yaml", "regnet_y_400mf", 32),
    "repvgg": ("repvgg.yaml", None, 32),
    "resnet": ("resnet.yaml", None, 32),
    "resnet18": ("resnet.yaml", "resnet18", 32),
    "shufflenet_v1": ("shufflenet_v1.yaml", None, None),
    "shufflenet_v2": ("shufflenet_v2.yaml", None, 64),
    "squeezenet1_0": ("squeezenet1_0.yaml", None, 64),
    "squeezenet1_1": ("squeezenet1_1.yaml", None, 64),
    "vgg": ("vgg.yaml", None, 32),
    "vgg11_bn": ("vgg.yaml", "vgg11_bn", 32),
}
SLOW = {"inception_v3", "bn_inception", "densenet", "densenet121", "efficientnet_v2", "googlenet"}


def test_every_zoo_file_is_covered():
    assert {c[0] for c in CASES.values()} == {p.name for p in SPECS.glob("*.yaml")}


def graph(spec: str, variant=None, res=None):
    return lower(apply_scaling(load(SPECS / spec, variant=variant, res=res)))


def import_file(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ejected(G, tmp_path, name="model"):
    path = tmp_path / f"{name}.py"
    path.write_text(eject(G, version=netspec.__version__))
    return path, import_file(path)


def outputs(model, x, train: bool):
    model.train(train)
    torch.manual_seed(123)
    with torch.no_grad():
        out = model(x)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in CASES])
def test_ejected_file_matches_the_compiled_module(case, tmp_path):
    spec, variant, res = CASES[case]
    G = graph(spec, variant, res)
    compiled = netspec.compile(G)
    path, module = ejected(G, tmp_path)
    model = module.build_model()
    assert list(model.state_dict()) == list(compiled.state_dict())  # same keys, same order
    model.load_state_dict(compiled.state_dict(), strict=True)
    compiled.load_state_dict(model.state_dict(), strict=True)  # and back
    x = torch.randn(2, *G.graph["input_shape"])
    for train in (False, True):
        want, got = outputs(compiled, x, train), outputs(model, x, train)
        assert len(got) == len(want) == (len(G.graph["outputs"]) if train else 1)
        for a, b in zip(want, got):
            assert a.shape == b.shape
            assert ((a - b).abs().max() / a.abs().max()).item() <= 1e-5, (case, train)


@pytest.mark.parametrize("case", ["lenet5", "mobilenet_v2", "googlenet"])
def test_num_classes_changes_the_classifier(case, tmp_path):
    spec, variant, res = CASES[case]
    G = graph(spec, variant, res)
    _, module = ejected(G, tmp_path)
    model = module.build_model(num_classes=10).train(case == "googlenet")
    out = model(torch.randn(2, *G.graph["input_shape"]))
    for o in out if isinstance(out, tuple) else (out,):
        assert o.shape == (2, 10)
    # same as the compiled module with --set num_classes=10
    G10 = lower(apply_scaling(load(SPECS / spec, overrides=["num_classes=10"], variant=variant, res=res)))
    assert list(model.state_dict()) == list(netspec.compile(G10).state_dict())
    model.load_state_dict(netspec.compile(G10).state_dict(), strict=True)


def test_file_needs_only_torch_and_reads_like_the_blocks(tmp_path):
    path, module = ejected(graph("mobilenet_v2.yaml", res=64), tmp_path)
    text = path.read_text()
    tree = ast.parse(text)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"torch", "typing", "math", "collections"}
    assert "generated by netspec eject" in text.lower() and "edit freely" in text
    assert "torchvision.models.mobilenet_v2" in text and netspec.__version__ in text
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert {"MobilenetV2", "Mbconv", "MbconvWithExpand", "MbconvWithExpandAdd"} <= classes
    assert "x = x + project" in text and "torch.fx" not in text
    assert "StochasticDepth" not in classes  # helpers only when used
    # stride varies between the uses of a class: a constructor argument
    assert "stride=2" in text and "def __init__(self, in_channels, expand_out_channels, stride" in text


def test_branches_split_shuffle_and_gating_are_plain_python(tmp_path):
    text, _ = ejected(graph("shufflenet_v2.yaml", res=64), tmp_path, "sv2")
    text = text.read_text()
    assert "torch.cat([" in text and ".chunk(2, 1)[0]" in text and "channel_shuffle(" in text
    text = ejected(graph("efficientnet.yaml", res=32), tmp_path, "eff")[0].read_text()
    assert " * " in text and "class StochasticDepth" in text


@pytest.mark.parametrize("case", ["lenet5", "mobilenet_v2", "googlenet", "lenet5_1998"])
def test_torchscript(case, tmp_path):
    spec, variant, res = CASES[case]
    G = graph(spec, variant, res)
    _, module = ejected(G, tmp_path)
    model = module.build_model().eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, *G.graph["input_shape"])
    torch.testing.assert_close(scripted(x), model(x))


@pytest.mark.slow
def test_torch_compile(tmp_path):
    G = graph("lenet5.yaml")
    _, module = ejected(G, tmp_path)
    model = module.build_model().eval()
    x = torch.randn(2, *G.graph["input_shape"])
    try:
        got = torch.compile(model)(x)
    except Exception as exc:  # noqa: BLE001 - inductor needs a C compiler, which some machines lack
        pytest.skip(f"torch.compile unavailable here: {type(exc).__name__}: {str(exc)[:200]}")
    torch.testing.assert_close(got, model(x))


def test_cli_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "lenet.py"
    assert main(["eject", str(SPECS / "lenet5.yaml"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lenet5 ->" in printed and "classes" in printed
    before = out.read_text()
    assert main(["eject", str(SPECS / "lenet5.yaml"), "-o", str(out), "--set", "num_classes=7"]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == before
    assert main(["eject", str(SPECS / "lenet5.yaml"), "-o", str(out), "--set", "num_classes=7", "--force"]) == 0
    assert "num_classes: int = 7" in out.read_text()


def test_cli_errors_are_located(tmp_path, capsys, write_spec):
    bad = write_spec("""
        name: bad
        input: {channels: 3, size: 32}
        stages:
          - blocks:
              - {type: conv, out: 8, kernal: 3}
        head: [{type: global_avgpool, keepdim: false}, {type: linear, out: 10}]
        """)
    assert main(["eject", str(bad), "-o", str(tmp_path / "m.py")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5:" in err and "kernal" in err
    assert not (tmp_path / "m.py").exists()
    assert main(["eject", str(SPECS / "lenet5.yaml"), "-o", str(tmp_path / "missing" / "m.py")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eject_needs_no_torch():
    import subprocess
    import sys
    code = ("import sys, netspec.eject, netspec.commands.eject\n"
            "from netspec.api import load, lower\nfrom netspec.eject import eject\n"
            "eject(lower(load('specs/mobilenet_v2.yaml')), version='x')\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SPECS.parent)


def test_every_op_has_a_source_rule():
    """A new op is one class in ops.py: its eject rule (`source`) lives there too."""
    from netspec import ops
    G = graph("lenet5_1998.yaml")
    seen = {d["op"] for _, d in G.nodes(data=True)}
    for name, op in ops.OPS.items():
        if name == "input":
            continue
        assert type(op).source is not ops.Op.source, f"op {name} has no `source` rule for netspec eject"
    assert {"table_conv2d", "subsample", "scaled_tanh", "rbf"} <= seen


def test_custom_layers_are_written_only_when_used(tmp_path):
    text = ejected(graph("lenet5_1998.yaml"), tmp_path, "lenet1998")[0].read_text()
    for cls in ("TableConv2d", "Subsample", "ScaledTanh", "RBF"):
        assert f"class {cls}(nn.Module)" in text
    assert "class Conv2dSame" not in text and "StochasticDepth" not in text


def _definitions(text: str) -> dict[str, str]:
    """{name: ast.dump} of each top-level class and function: the definition, whatever its layout."""
    return {n.name: ast.dump(n) for n in ast.parse(text).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}


def test_ejected_layers_are_the_compiled_modules_own_definitions(tmp_path):
    """One definition of each layer: a layer class (or function) an ejected file writes is, statement
    for statement, the one in backends/torch_layers.py that the compiled module runs, and every such
    class the compiled module instantiates is written."""
    from pathlib import Path

    from netspec.backends import torch_layers
    defined = _definitions(Path(torch_layers.__file__).read_text(encoding="utf-8"))
    written: dict[str, str] = {}
    for case in ("lenet5_1998", "convnext", "efficientnet", "shufflenet_v2", "squeezenet1_0"):
        G = graph(*CASES[case])
        text = eject(G, version="x")
        blocks = {n for n, _ in _definitions(text).items() if n in defined}
        used = {type(m).__name__ for m in netspec.compile(G).modules() if type(m).__module__ == torch_layers.__name__}
        used -= {"Add", "Concat", "Mul", "Chunk", "ChannelShuffle"}  # may be written inline (`Op.inline`)
        assert used <= blocks, f"{case}: the compiled module's {sorted(used - blocks)} are not in the file"
        for name in blocks:
            assert _definitions(text)[name] == defined[name], f"{case}: {name} differs from torch_layers.py"
            written[name] = case
    assert {"TableConv2d", "Subsample", "ScaledTanh", "RBF", "LayerNorm2d", "ChannelLinear", "LayerScale",
            "StochasticDepth", "channel_shuffle"} <= set(written)


def test_every_ejectable_layer_scripts(tmp_path):
    """Every definition eject may write compiles with TorchScript (multi-input layers take a list)."""
    from netspec.eject import HELPERS
    path = tmp_path / "layers.py"
    path.write_text("from typing import List, Optional, Tuple\n\nimport torch\nimport torch.nn as nn\n"
                    "import torch.nn.functional as F\n\n\n" + "\n\n\n".join(HELPERS.values()) + "\n")
    L = import_file(path)
    instances = {"Conv2dSame": L.Conv2dSame(3, 4, 3, pad=(0, 1, 0, 1)), "GlobalAvgPool": L.GlobalAvgPool(),
                 "StochasticDepth": L.StochasticDepth(0.2), "LayerNorm2d": L.LayerNorm2d(3),
                 "ChannelLinear": L.ChannelLinear(3, 4), "LayerScale": L.LayerScale(3), "Concat": L.Concat(),
                 "Add": L.Add(inplace=1), "Mul": L.Mul(inplace=0), "Chunk": L.Chunk(3, 1),
                 "ChannelShuffle": L.ChannelShuffle(3), "ScaledTanh": L.ScaledTanh(1.7, 0.6),
                 "Subsample": L.Subsample(3, (2, 2), (2, 2)), "TableConv2d": L.TableConv2d(3, [[0], [1, 2]], (3, 3)),
                 "RBF": L.RBF(3, 2)}
    assert set(instances) | {"channel_shuffle"} == set(HELPERS)
    x = torch.randn(2, 3, 6, 6)
    for name, layer in instances.items():
        scripted = torch.jit.script(layer.eval())
        if name in ("Concat", "Add"):
            args = ([x.clone(), x.clone()],)
        elif name == "Mul":
            args = (x.clone(), x.clone())
        elif name == "RBF":
            args = (x[:, :, 0, 0].clone(),)
        else:
            args = (x.clone(),)
        want = layer(*[a if isinstance(a, torch.Tensor) else [t.clone() for t in a] for a in args])
        torch.testing.assert_close(scripted(*args), want, msg=name)


def test_cli_variant_and_no_aux(tmp_path, capsys):
    out = tmp_path / "g.py"
    assert main(["eject", str(SPECS / "googlenet.yaml"), "--no-aux", "--res", "96", "-o", str(out)]) == 0
    model = import_file(out).build_model().train()
    compiled = netspec.build(SPECS / "googlenet.yaml", aux=False, res=96).train()
    model.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96)
    torch.manual_seed(0)
    a = compiled(x)
    torch.manual_seed(0)
    b = model(x)
    assert isinstance(b, torch.Tensor) and torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    out = tmp_path / "r.py"
    assert main(["eject", str(SPECS / "resnet.yaml"), "--variant", "resnet18", "-o", str(out)]) == 0
    assert "--variant resnet18" in out.read_text() and "class ResnetBasicWithDownsample" in out.read_text()


def test_a_block_whose_output_nothing_reads(tmp_path, write_spec):
    """Fuzz seed 10561: a block never called (its output unused) still gets a class with a forward of
    its own, and the file equals the compiled module (which skips the block as well)."""
    path = write_spec("""
        name: dead_block
        input: {channels: 3, size: 16}
        stages:
          - name: s
            blocks:
              - {type: conv_bn_act, out: 8, kernel: 3, act: relu, name: used}
              - {type: conv_bn_act, out: 8, kernel: 3, act: relu, name: unused}
              - {type: global_avgpool, inputs: [used]}
              - {type: flatten}
              - {type: linear, out: 4}
        """)
    G = lower(load(path))
    compiled = netspec.compile(G).eval()
    _, module = ejected(G, tmp_path)
    model = module.build_model().eval()
    assert list(model.state_dict()) == list(compiled.state_dict())   # the unused block's weights too
    model.load_state_dict(compiled.state_dict())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), compiled(x))
    unused = next(m for name, m in model.named_modules() if name.endswith("unused"))
    assert unused(torch.randn(1, 8, 16, 16)).shape == (1, 8, 16, 16)  # its class has a working forward
