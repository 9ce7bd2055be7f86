"""The compiled torch module: hierarchy, determinism, train/eval semantics, compile and export."""
from __future__ import annotations

import io

import pytest

torch = pytest.importorskip("torch")

import netspec  # noqa: E402
from netspec.analysis import costs  # noqa: E402

SMALL = """
    name: small
    input: {channels: 3, size: 32}
    num_classes: 10
    drop_path_rate: 0.5
    defaults: {conv2d: {bias: false}}
    stem: [{type: conv_bn_act, name: conv, out: 16, stride: 2}]
    stages:
      - name: s1
        blocks:
          - {type: mbconv, name: mb, out: 16, expand: 2, se: 0.25, repeat: 2}
      - blocks:
          - {type: mbconv, out: 24, stride: 2, expand: 4}
    head:
      - {type: global_avgpool, name: pool, keepdim: false}
      - {type: dropout, name: dropout, p: 0.5}
      - {type: linear, name: fc, out: $num_classes}
    aux_heads:
      - name: aux
        at: mb
        layers:
          - {type: global_avgpool, keepdim: false}
          - {type: linear, name: fc, out: $num_classes}
    """


@pytest.fixture
def small(write_spec):
    return netspec.lower(netspec.load(write_spec(SMALL)))


def test_module_tree_mirrors_the_spec(small):
    model = netspec.compile(small)
    keys = list(model.state_dict())
    assert keys[0] == "stem.conv.conv.weight"
    assert "stages.s1.blocks.mb.1.se.reduce.weight" in keys
    assert "aux.aux.fc.weight" in keys and keys[-1] == "aux.aux.fc.bias"
    # one IR node <-> one module at the same dotted path
    modules = dict(model.named_modules())
    for n, d in small.nodes(data=True):
        if d["op"] != "input":
            assert n in modules, n
    assert sum(p.numel() for p in model.parameters()) == costs.total_params(small, include_aux=True)
    assert sum(b.numel() for b in model.buffers()) == costs.total_buffers(small, include_aux=True)


def test_forward_is_generated_code_not_an_interpreter(small):
    model = netspec.compile(small)
    code = model.code
    assert "def forward(self, x)" in code
    assert "self.stem(x)" in code and "self.head(" in code  # straight-line calls of the parts
    assert "aux" not in code                  # the inference graph does not compute aux heads
    assert "self.aux" in model._train_code    # the training one does
    block = model.stages.s1.blocks.mb[0]
    assert "self.se(" in block.code and "for " not in block.code  # each part: one call per child
    assert "self.stages_s1_blocks_mb" in model._infer_nograd.code  # the flat no-grad fast path


def test_same_seed_same_weights_and_global_rng_untouched(small):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = netspec.compile(small, seed=7).state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)
    b = netspec.compile(small, seed=7).state_dict()
    c = netspec.compile(small, seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_train_returns_aux_logits_eval_does_not(small):
    model = netspec.compile(small)
    x = torch.randn(4, 3, 32, 32)
    model.train()
    out = model(x)
    assert isinstance(out, tuple) and [o.shape for o in out] == [(4, 10), (4, 10)]
    model.eval()
    y = model(x)
    assert isinstance(y, torch.Tensor) and y.shape == (4, 10)


def test_dropout_bn_and_drop_path_follow_the_mode(small):
    model = netspec.compile(small)
    x = torch.randn(8, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # deterministic in eval
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        a = model(x)[0]
        b = model(x)[0]
    assert not torch.equal(a, b)  # dropout / drop path are active in training
    bn = model.stem.conv.bn
    assert bn.num_batches_tracked.item() == 2  # BN statistics update only in train mode


def test_backward_reaches_every_parameter(small):
    model = netspec.compile(small).train()
    logits, aux = model(torch.randn(2, 3, 32, 32))
    (logits.sum() + 0.3 * aux.sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_torch_compile_matches_eager(small):
    model = netspec.compile(small).eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_onnx_export_and_torchscript_trace(small, tmp_path):
    onnx = pytest.importorskip("onnx")
    model = netspec.compile(small).eval()
    x = torch.randn(1, 3, 32, 32)
    path = tmp_path / "small.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], output_names=["logits"])
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "Mul", "Add", "Gemm"} <= ops
    traced = torch.jit.trace(model, x)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.jit.load(buffer)(x), model(x))
