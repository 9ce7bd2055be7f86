"""Each primitive op's shape rule and tensor shapes agree with the torch module its factory builds."""
from __future__ import annotations

import itertools
import math

import pytest

torch = pytest.importorskip("torch")

from netspec import ops  # noqa: E402
from netspec.infer import infer_op  # noqa: E402


def run(op_name: str, params: dict, *in_shapes):
    op = ops.get_op(op_name)
    inf = infer_op(op, op.Params.model_validate(params), list(in_shapes))
    module = op.torch(inf.attrs, list(in_shapes), inf.shape)
    with torch.no_grad():
        xs = [torch.randn(2, *s) for s in in_shapes]
        y = module(xs) if op.arity is None else module(*xs)  # any arity: one list (TorchScript-able)
    return inf, module, y


@pytest.mark.parametrize("size, k, s, p, ceil", [
    (size, k, s, p, ceil)
    for size, k, s, ceil in itertools.product((13, 14, 15, 56, 109), (2, 3), (1, 2), (False, True))
    for p in range(0, k // 2 + 1)
])
def test_pool_output_size_matches_torch(size, k, s, p, ceil):
    for op_name in ("maxpool", "avgpool"):
        inf, _, y = run(op_name, {"kernel": k, "stride": s, "padding": p, "ceil_mode": ceil}, (3, size, size))
        assert tuple(y.shape[1:]) == inf.shape


@pytest.mark.parametrize("padding", [0, 1, [0, 3], "same", "valid", "tf_same"])
@pytest.mark.parametrize("kernel, stride, dilation, groups", [
    (3, 1, 1, 1), (3, 2, 1, 1), ([1, 7], 1, 1, 1), ([7, 1], 2, 1, 1), (3, 2, 2, "depthwise"), (5, 2, 1, 2), (1, 1, 1, 4),
])
def test_conv_shapes_and_weights_match_torch(kernel, stride, dilation, groups, padding):
    inf, module, y = run("conv2d", {"out": 8, "kernel": kernel, "stride": stride, "padding": padding,
                                    "dilation": dilation, "groups": groups}, (8, 17, 16))
    assert tuple(y.shape[1:]) == inf.shape
    assert {k: tuple(v.shape) for k, v in module.named_parameters()} == inf.weights


def test_tf_same_padding_equals_tensorflow_rule():
    # TF SAME with stride 2 on an even input pads one extra pixel at the bottom/right
    inf, module, y = run("conv2d", {"out": 4, "kernel": 3, "stride": 2, "padding": "tf_same"}, (3, 224, 224))
    assert inf.attrs["pad"] == (0, 1, 0, 1) and inf.shape == (4, 112, 112)
    assert type(module).__name__ == "Conv2dSame"


def test_conv_macs_formula():
    inf, _, _ = run("conv2d", {"out": 32, "kernel": 3, "padding": 1, "groups": 4}, (16, 32, 32))
    op = ops.get_op("conv2d")
    # Cout * H * W * (Cin / g) * kh * kw
    assert op.macs(inf.attrs, [(16, 32, 32)], inf.shape) == 32 * 32 * 32 * 4 * 9


@pytest.mark.parametrize("op_name, params, shapes", [
    ("batchnorm", {"eps": 1e-3, "momentum": 0.01}, [(8, 5, 5)]),
    ("batchnorm", {}, [(8,)]),
    ("lrn", {"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}, [(8, 5, 5)]),
    ("adaptive_avgpool", {"output": [6, 6]}, [(8, 13, 13)]),
    ("adaptive_maxpool", {"output": 4}, [(8, 14, 14)]),
    ("global_avgpool", {}, [(8, 5, 5)]),
    ("global_avgpool", {"keepdim": False}, [(8, 5, 5)]),
    ("flatten", {}, [(8, 5, 5)]),
    ("linear", {"out": 7}, [(40,)]),
    ("concat", {}, [(3, 5, 5), (4, 5, 5), (1, 5, 5)]),
    ("add", {}, [(3, 5, 5), (3, 5, 5)]),
    ("mul", {}, [(8, 5, 5), (8, 1, 1)]),
    ("chunk", {"chunks": 2, "index": 1}, [(8, 5, 5)]),
    ("channel_shuffle", {"groups": 2}, [(8, 5, 5)]),
    ("dropout", {"p": 0.2}, [(8, 5, 5)]),
    ("drop_path", {"p": 0.2}, [(8, 5, 5)]),
    *[(a, {}, [(8, 5, 5)]) for a in ops.ACTIVATIONS],
    ("scaled_tanh", {}, [(8, 5, 5)]),
    ("subsample", {"kernel": 2}, [(6, 28, 28)]),
    ("subsample", {"kernel": 3, "stride": 2, "bias": False}, [(4, 9, 9)]),
    ("table_conv2d", {"table": [[0, 1], [2], [0, 1, 2], [1, 2]], "kernel": 3, "padding": 1}, [(3, 8, 8)]),
    ("rbf", {"out": 10}, [(84,)]),
    ("layernorm", {"eps": 1e-6}, [(8, 5, 5)]),
    ("layernorm", {"affine": False}, [(8,)]),
    ("groupnorm", {"groups": 4}, [(8, 5, 5)]),
    ("channel_linear", {"out": 12}, [(8, 5, 5)]),
    ("channel_linear", {"out": 3, "bias": False}, [(8, 5, 5)]),
    ("layer_scale", {"init": 0.5}, [(8, 5, 5)]),
])
def test_every_op_shape_and_tensors_match_torch(op_name, params, shapes):
    inf, module, y = run(op_name, params, *shapes)
    assert tuple(y.shape[1:]) == inf.shape
    assert {k: tuple(v.shape) for k, v in module.named_parameters()} == inf.weights
    assert {k: tuple(v.shape) for k, v in module.named_buffers()} == inf.buffers


def test_channel_shuffle_permutation_is_torchvisions():
    _, module, _ = run("channel_shuffle", {"groups": 2}, (6, 1, 1))
    x = torch.arange(6.0).view(1, 6, 1, 1)
    # view (2, 3) -> transpose -> flatten: [0, 3, 1, 4, 2, 5]
    assert module(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_every_registered_op_is_covered():
    covered = {"conv2d", "maxpool", "avgpool", "input", "batchnorm", "lrn", "adaptive_avgpool", "adaptive_maxpool",
               "global_avgpool", "flatten", "linear", "concat", "add", "mul", "chunk", "channel_shuffle", "dropout",
               "drop_path", "identity", *ops.ACTIVATIONS, "scaled_tanh", "subsample", "table_conv2d", "rbf",
               "layernorm", "groupnorm", "channel_linear", "layer_scale"}
    assert set(ops.OPS) <= covered, set(ops.OPS) - covered
    assert math.prod(run("identity", {}, (2, 3, 3))[0].shape) == 18


# --------------------------------------------------------------------------- LeNet-5's ops

def test_table_conv2d_is_a_dense_conv_with_the_table_as_mask():
    table = [[0, 2], [1], [0, 1, 2], [2, 0]]
    inf, module, _ = run("table_conv2d", {"table": table, "kernel": 3, "stride": 2, "padding": 1}, (3, 9, 9))
    dense = torch.zeros(4, 3, 3, 3)
    rows = iter(module.weight)
    for k in sorted({len(m) for m in table}):  # the weight's order: maps grouped by fan-in
        for i, maps in enumerate(table):
            if len(maps) == k:
                for c in maps:
                    dense[i, c] = next(rows)
    x = torch.randn(2, 3, 9, 9)
    expected = torch.nn.functional.conv2d(x, dense, module.bias, stride=2, padding=1)
    assert torch.allclose(module(x), expected, atol=1e-6)
    assert tuple(expected.shape[1:]) == inf.shape
    assert ops.get_op("table_conv2d").macs(inf.attrs, [(3, 9, 9)], inf.shape) == 8 * 9 * 5 * 5


def test_subsample_is_a_scaled_window_sum_plus_bias():
    _, module, _ = run("subsample", {"kernel": 2}, (3, 6, 6))
    x = torch.randn(2, 3, 6, 6)
    window_sum = torch.nn.functional.avg_pool2d(x, 2) * 4
    expected = window_sum * module.weight.view(1, 3, 1, 1) + module.bias.view(1, 3, 1, 1)
    assert torch.allclose(module(x), expected, atol=1e-6)


def test_scaled_tanh_maps_plus_minus_one_to_themselves():
    _, module, _ = run("scaled_tanh", {}, (1, 1, 2))
    y = module(torch.tensor([[[[1.0, -1.0]]]]))
    assert torch.allclose(y, torch.tensor([[[[1.0, -1.0]]]]), atol=2e-4)  # 1.7159 tanh(2/3) = 1.00002


def test_rbf_is_the_squared_distance_to_fixed_codes():
    _, module, _ = run("rbf", {"out": 10}, (84,))
    assert not list(module.parameters())                       # not trained: the codes are a buffer
    assert set(module.centers.unique().tolist()) == {-1.0, 1.0}
    x = torch.randn(3, 84)
    expected = ((x[:, None, :] - module.centers[None]) ** 2).sum(-1)
    assert torch.allclose(module(x), expected, atol=1e-4)


def test_layernorm_and_channel_linear_compute_what_convnext_computes():
    # torchvision's CNBlock: permute to channels-last, nn.LayerNorm, nn.Linear, permute back
    ln_inf, ln, _ = run("layernorm", {"eps": 1e-6}, (8, 5, 5))
    fc_inf, fc, _ = run("channel_linear", {"out": 12}, (8, 5, 5))
    for m in (ln, fc):
        with torch.no_grad():
            m.weight.uniform_(-1, 1), m.bias.uniform_(-1, 1)
    ref_ln = torch.nn.LayerNorm(8, eps=1e-6)
    ref_fc = torch.nn.Linear(8, 12)
    ref_ln.load_state_dict(ln.state_dict()), ref_fc.load_state_dict(fc.state_dict())
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        expected = ref_fc(ref_ln(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        assert torch.equal(fc(ln(x)), expected)
    # a linear over channels is a 1x1 conv: MACs are in * out per position
    op = ops.get_op("channel_linear")
    assert op.macs(fc_inf.attrs, [(8, 5, 5)], fc_inf.shape) == 8 * 12 * 25
    assert fc_inf.attrs["in_features"] == 8 and fc_inf.shape == (12, 5, 5)


def test_groupnorm_and_layer_scale_values():
    inf, gn, _ = run("groupnorm", {"groups": 4, "eps": 1e-3}, (8, 5, 5))
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        gn.weight.uniform_(-1, 1), gn.bias.uniform_(-1, 1)
        torch.testing.assert_close(gn(x), torch.nn.functional.group_norm(x, 4, gn.weight, gn.bias, 1e-3))
    inf, ls, _ = run("layer_scale", {"init": 0.25}, (8, 5, 5))
    assert tuple(ls.weight.shape) == (8, 1, 1) and torch.all(ls.weight == 0.25)
    with torch.no_grad():
        assert torch.equal(ls(x), x * 0.25)


@pytest.mark.parametrize("op_name, params, shape, message", [
    ("groupnorm", {"groups": 3}, (8, 5, 5), "do not split into 3 groups"),
    ("groupnorm", {"groups": 2}, (8,), "needs a feature map"),
    ("channel_linear", {"out": 4}, (8,), "needs a feature map"),
])
def test_new_ops_refuse_bad_shapes(op_name, params, shape, message):
    op = ops.get_op(op_name)
    with pytest.raises(ops.ShapeError, match=message):
        infer_op(op, op.Params.model_validate(params), [shape])
