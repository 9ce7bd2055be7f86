"""Files that leave netspec: checkpoints in (netspec's keys, reference names, order), state dicts
out (netspec or torchvision names, .pt / .safetensors), TorchScript, and ONNX checked in
onnxruntime against the torch module for every zoo spec, at two batch sizes.

Every error path ends in a located message (exit 2 from the CLI) that lists the offending keys
with both shapes.
"""
from __future__ import annotations

import pytest

import netspec
from conftest import SPECS
from netspec.cli import main
from netspec.reference_keys import read_key_list
from netspec.scale import apply_scaling

torch = pytest.importorskip("torch")

SMALL = SPECS / "mobilenet_v3_small.yaml"


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """MobileNetV3-small saved with netspec's keys (.pt) and with torchvision's (.safetensors)."""
    d = tmp_path_factory.mktemp("ckpt")
    assert main(["build", str(SMALL), "--seed", "3", "--out", str(d / "own.pt")]) == 0
    assert main(["build", str(SMALL), "--seed", "3", "--out", str(d / "tv.safetensors"),
                 "--save-as", "torchvision"]) == 0
    return d


# --------------------------------------------------------------------------- checkpoints in

def test_own_keys_match_by_name_and_reference_names_by_name(small_files, capsys):
    capsys.readouterr()
    expected = netspec.build(SMALL, seed=3).state_dict()
    for file, how in (("own.pt", "name"), ("tv.safetensors", "reference names")):
        model = netspec.build(SMALL, weights=small_files / file)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), expected.values()))
        assert main(["build", str(SMALL), "--weights", str(small_files / file)]) == 0
        assert f"loaded 244 tensors from {small_files / file} (matched by {how})" in capsys.readouterr().out


def test_foreign_names_match_by_order_and_the_report_shows_every_pair(small_files, tmp_path, capsys):
    from safetensors.torch import load_file
    tv = load_file(str(small_files / "tv.safetensors"))
    # names no key list knows (another framework's), in registration order; old files lack the counters
    order = read_key_list("torchvision/mobilenet_v3_small")  # safetensors files keep keys sorted by name
    foreign = {f"layer{i:03d}.{k.rpartition('.')[2]}": tv[k] for i, k in enumerate(order)
               if not k.endswith("num_batches_tracked")}
    path = tmp_path / "foreign.pth"
    torch.save({"state_dict": foreign, "epoch": 90}, path)
    model = netspec.build(SMALL, weights=path)
    ours = netspec.build(SMALL, seed=3)
    for k, v in ours.state_dict().items():
        assert torch.equal(model.state_dict()[k], v if not k.endswith("num_batches_tracked") else torch.tensor(0))
    capsys.readouterr()
    assert main(["build", str(SMALL), "--weights", str(path), "--weights-report"]) == 0
    out = capsys.readouterr().out
    assert f"{len(foreign)} tensors matched by order" in out and len(foreign) == 244 - 34  # no BN counters
    first = next(line for line in out.splitlines() if "<-" in line).split()
    assert first == ["stem.conv.conv.weight", "<-", "layer000.weight", "(16,", "3,", "3,", "3)"]


def test_order_matching_of_a_safetensors_file_explains_its_sorted_keys(small_files, tmp_path, capsys):
    from safetensors.torch import load_file, save_file
    tv = load_file(str(small_files / "tv.safetensors"))
    save_file({f"net.{k}": v for k, v in tv.items()}, str(tmp_path / "renamed.safetensors"))
    err = _cli_error(["build", str(SMALL), "--weights", str(tmp_path / "renamed.safetensors")], capsys)
    assert "matched by order" in err and "safetensors files store their keys sorted by name" in err


def _cli_error(argv, capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_checkpoint_of_another_shape_lists_the_keys_with_both_shapes(small_files, capsys):
    err = _cli_error(["build", str(SMALL), "--set", "num_classes=10", "--weights", str(small_files / "own.pt"),
                      "--strict"], capsys)  # without --strict another num_classes is fine-tuning (test_finetune.py)
    assert "2 tensors of the checkpoint have another shape than the model's (matched by name" in err
    assert "head.fc2.weight (10, 1024)  <-  head.fc2.weight (1000, 1024)" in err
    assert "head.fc2.bias (10,)  <-  head.fc2.bias (1000,)" in err
    err = _cli_error(["build", str(SMALL), "--set", "stages[0].blocks[0].out=24", "--weights",
                      str(small_files / "own.pt")], capsys)  # not the classifier: refused without --strict too
    assert "have another shape than the model's" in err
    assert main(["build", str(SMALL), "--set", "num_classes=10", "--weights", str(small_files / "own.pt")]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 tensors of the classifier" in out and "head.fc2.bias (10,)  <-  head.fc2.bias (1000,)" in out


def test_a_checkpoint_of_another_network_is_refused(small_files, capsys):
    err = _cli_error(["build", str(SPECS / "mobilenet_v2.yaml"), "--weights", str(small_files / "own.pt")], capsys)
    assert "the checkpoint has 210 tensors (besides BatchNorm counters), the model 262" in err
    assert "first unmatched:" in err and "model " in err and "hint:" in err


def test_extra_tensors_are_refused(small_files, tmp_path, capsys):
    state = torch.load(small_files / "own.pt")
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "extra.pt")
    err = _cli_error(["build", str(SMALL), "--weights", str(tmp_path / "extra.pt")], capsys)
    assert "the checkpoint has 211 tensors" in err and "checkpoint extra.weight (3,)" in err


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"not a zip file", "cannot read checkpoint"),
    ("list", "the checkpoint holds no state dict"),
])
def test_unreadable_checkpoints_are_located(tmp_path, capsys, content, message):
    path = tmp_path / "w.pt"
    if content == "list":
        torch.save([torch.zeros(1)], path)
    elif content is not None:
        path.write_bytes(content)
    err = _cli_error(["build", str(SPECS / "lenet5.yaml"), "--weights", str(path)], capsys)
    assert err.startswith(f"error: {path}: ") and message in err


def test_unknown_checkpoint_type(tmp_path, capsys):
    (tmp_path / "w.npz").write_bytes(b"x")
    err = _cli_error(["build", str(SPECS / "lenet5.yaml"), "--weights", str(tmp_path / "w.npz")], capsys)
    assert "unknown checkpoint type '.npz'" in err


def test_an_unknown_reference_key_list_is_located(write_spec, tmp_path, capsys):
    path = write_spec("""
        name: tiny
        reference_keys: torchvision/resnet9000
        input: {size: 8}
        head: [{type: flatten}, {type: linear, out: 2}]
        """)
    torch.save({"w": torch.zeros(2, 192), "b": torch.zeros(2)}, tmp_path / "w.pt")
    err = _cli_error(["build", str(path), "--weights", str(tmp_path / "w.pt")], capsys)
    assert "spec.yaml:2:17: reference_keys: no reference key list 'torchvision/resnet9000'" in err
    assert "torchvision/alexnet" in err  # the hint lists what exists


# --------------------------------------------------------------------------- state dicts, TorchScript out

def test_save_as_torchvision_needs_a_key_list_and_a_state_dict_file(tmp_path, capsys):
    err = _cli_error(["build", str(SPECS / "lenet5.yaml"), "--out", str(tmp_path / "l.pt"), "--save-as",
                      "torchvision"], capsys)
    assert "declares no torchvision key list" in err and not (tmp_path / "l.pt").exists()
    err = _cli_error(["build", str(SMALL), "--out", str(tmp_path / "m.onnx"), "--save-as", "torchvision"], capsys)
    assert "names the keys of a state dict, not of a .onnx file" in err


def test_save_as_torchvision_refuses_a_network_the_key_list_does_not_fit(tmp_path, capsys):
    err = _cli_error(["build", str(SPECS / "googlenet.yaml"), "--no-aux", "--out", str(tmp_path / "g.pt"),
                      "--save-as", "torchvision"], capsys)
    assert "reference_keys: the model has 344 tensors, the reference key list 364" in err


def test_safetensors_and_torchscript_round_trip(small_files, tmp_path):
    from safetensors.torch import load_file
    model = netspec.build(SMALL, seed=3).eval()
    tv = load_file(str(small_files / "tv.safetensors"))
    keys = read_key_list("torchvision/mobilenet_v3_small")
    assert set(tv) == set(keys)
    assert all(torch.equal(tv[k], v) for k, v in zip(keys, model.state_dict().values()))
    assert main(["build", str(SMALL), "--seed", "3", "--out", str(tmp_path / "m.ts")]) == 0
    scripted = torch.jit.load(str(tmp_path / "m.ts"))
    x = torch.randn(3, 3, 224, 224)  # traced at batch 1, run at batch 3
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- ONNX

# every zoo spec, at the smallest input its head allows in ONNX: fixed-kernel average pools
# (ShuffleNet v1, BN-Inception), AlexNet 2012's flatten and the adaptive pools to 6x6 / 7x7
# (ONNX expresses adaptive pooling only when the output divides the input) need the full size
ONNX = {
    "lenet5": 32, "alexnet": 224, "alexnet_2012": 227, "bn_inception": 224, "googlenet": 64,
    "inception_v3": 96, "mobilenet_v1": 64, "mobilenet_v2": 64, "mobilenet_v3_large": 64,
    "mobilenet_v3_small": 64, "shufflenet_v1": 224, "shufflenet_v2": 64, "squeezenet1_0": 64,
    "squeezenet1_1": 64, "efficientnet": 64, "efficientnet_v2": 64, "resnet": 64, "densenet": 64,
    "lenet5_1998": 32, "convnext": 64, "regnet": 64, "repvgg": 64,
    # vgg.yaml (vgg11 .. vgg19_bn, A .. E): conv, ReLU, BatchNorm, max-pool, adaptive pool at 224 (an identity),
    # linear, dropout - all exported above (AlexNet has the same head); each VGG is a 0.5 GB file
    # at 7-20 GMACs, so they are left out to keep the suite short
}


def test_the_onnx_table_covers_the_zoo():
    zoo = {p.stem for p in SPECS.glob("*.yaml")}
    assert set(ONNX) | {"vgg"} == zoo


@pytest.mark.parametrize("name", ONNX)
def test_onnx_runs_in_onnxruntime_at_two_batch_sizes(name, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from netspec.interop import OPSET, export_onnx

    spec = apply_scaling(netspec.load(SPECS / f"{name}.yaml"), resolution=ONNX[name])
    G = netspec.lower(spec, aux=False)  # the exported graph is the inference graph
    model = netspec.compile(G).eval()
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, G, path)
    proto = onnx.load(str(path), load_external_data=False)
    assert proto.opset_import[0].version == OPSET >= 17
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, *G.graph["input_shape"])
        with torch.no_grad():
            expected = model(x)
        got = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_an_op_onnx_cannot_express_is_named_with_its_entry(write_spec, tmp_path, capsys):
    path = write_spec("""
        name: tiny
        input: {size: 8}
        stem: [{type: conv2d, out: 4, kernel: 3, stride: 2, padding: 1}]
        head:
          - {type: adaptive_avgpool, output: 3}
          - {type: flatten}
          - {type: linear, out: 2}
        """)
    err = _cli_error(["build", str(path), "--out", str(tmp_path / "t.onnx")], capsys)
    assert "spec.yaml:5:5: head[0]: ONNX (opset 18) cannot express op 'adaptive_avgpool'" in err
    assert "export TorchScript (.ts)" in err and not (tmp_path / "t.onnx").exists()


def test_weights_report_needs_weights(capsys):
    err = _cli_error(["build", str(SPECS / "lenet5.yaml"), "--weights-report"], capsys)
    assert "no --weights given" in err
