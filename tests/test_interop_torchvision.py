"""Every zoo spec with a torchvision counterpart against torchvision 0.28.0, through a checkpoint.

For each constructor of TORCHVISION: build the torchvision model (its own random initialisation,
plus random BatchNorm statistics and affine parameters so that eval mode is not an identity),
save its state dict to a file, load that file with netspec's checkpoint import
(`netspec.build(..., weights=FILE)`, the spec's reference key list) and compare the outputs in
eval mode and in train mode (dropout, stochastic depth and batch statistics; aux logits
included), seeding torch before each forward so both draw the same random numbers. Then the
reverse: `--save-as torchvision` writes a file the torchvision constructor loads with strict=True.

Big models run at small inputs (every network here ends in an adaptive or global pool; the
Inception v3 aux head needs the 17x17 grid of its 299 px input, so it runs at 299).
"""
from __future__ import annotations

import pytest

import netspec
from conftest import SPECS
from netspec.reference_keys import TORCHVISION_CONSTRUCTORS, read_key_list

torch = pytest.importorskip("torch")

# torchvision constructor -> (spec file, variant, input size)
TORCHVISION = {
    "alexnet": ("alexnet.yaml", None, 64),
    **{f"vgg{n}{bn}": ("vgg.yaml", f"vgg{n}{bn}", 32) for n in (11, 13, 16, 19) for bn in ("", "_bn")},
    "googlenet": ("googlenet.yaml", None, 96),
    "inception_v3": ("inception_v3.yaml", None, 299),
    "mobilenet_v2": ("mobilenet_v2.yaml", None, 64),
    "mobilenet_v3_large": ("mobilenet_v3_large.yaml", None, 64),
    "mobilenet_v3_small": ("mobilenet_v3_small.yaml", None, 64),
    **{f"shufflenet_v2_x{w}": ("shufflenet_v2.yaml", f"x{w}", 64) for w in ("0_5", "1_0", "1_5", "2_0")},
    "squeezenet1_0": ("squeezenet1_0.yaml", None, 64),
    "squeezenet1_1": ("squeezenet1_1.yaml", None, 64),
    **{f"efficientnet_b{i}": ("efficientnet.yaml", f"b{i}", 64) for i in range(8)},
    **{f"efficientnet_v2_{s}": ("efficientnet_v2.yaml", s, 64) for s in "sml"},
    **{n: ("resnet.yaml", n, 64) for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                           "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2")},
    **{f"densenet{n}": ("densenet.yaml", f"densenet{n}", 64) for n in (121, 161, 169, 201)},
    **{f"convnext_{s}": ("convnext.yaml", f"convnext_{s}", 64) for s in ("tiny", "small", "base", "large")},
    **{f"regnet_{xy}_{s}": ("regnet.yaml", f"regnet_{xy}_{s}", 64)
       for xy in "xy" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")},
    "regnet_y_128gf": ("regnet.yaml", "regnet_y_128gf", 64),
}
# Too big for a forward through a checkpoint in the suite's time (and 128GF's 645M parameters, twice,
# in its memory): checked on the meta device instead, tensor by tensor in registration order (what
# checkpoint import matches on), beside params/buffers/MACs against figures.json in test_zoo.py.
META_ONLY = {"regnet_x_16gf", "regnet_x_32gf", "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf"}
AUX = {"googlenet", "inception_v3"}
# torchvision returns GoogLeNetOutputs(logits, aux_logits2, aux_logits1); netspec returns its
# outputs in spec order (logits, aux1, aux2)
TV_OUTPUT_ORDER = {"googlenet": ("logits", "aux2", "aux1"), "inception_v3": ("logits", "AuxLogits")}
BIG = {"vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_m",
       "efficientnet_v2_l", "resnet152", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2", "densenet161",
       "convnext_small", "convnext_base", "convnext_large", "regnet_x_8gf", "regnet_y_8gf"}


def torchvision_model(name: str):
    """The torchvision model with random weights: built on the meta device (its own initialisation
    costs seconds for the big ones), then filled with uniform weights of the default fan-in scale,
    and BatchNorm that is not an identity in eval mode."""
    from netspec._torchvision import meta_model
    kwargs = {"aux_logits": True, "init_weights": False} if name in AUX else {}
    model = meta_model(name, **kwargs).to_empty(device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0, 0.2, generator=gen)
                m.num_batches_tracked.fill_(7)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                bound = 3 ** 0.5 / (m.weight[0].numel() ** 0.5)  # variance-preserving
                w = m.weight.view(m.weight.shape[0], -1)
                if w.numel() < 1 << 20:
                    w.uniform_(-bound, bound, generator=gen)
                else:  # VGG's 100M-weight classifier: a random outer product costs no RNG time
                    rows = torch.rand(w.shape[0], 1, generator=gen) + 0.5
                    cols = torch.empty(1, w.shape[1]).uniform_(-bound, bound, generator=gen)
                    torch.mul(rows, cols, out=w)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1, generator=gen)
            elif isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0, 0.2, generator=gen)
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):  # ConvNeXt's bare parameter; not 1e-6, so each block counts
                p.uniform_(0.5, 1.5, generator=gen)
    return model


def outputs(out, names):
    return dict(zip(names, out)) if isinstance(out, tuple) else {"logits": out}


def assert_same(ours: dict, theirs: dict):
    assert set(ours) == set(theirs)
    for k, ref in theirs.items():
        scale = ref.abs().max().item()
        torch.testing.assert_close(ours[k], ref, rtol=1e-4, atol=1e-4 * max(scale, 1e-3), msg=lambda m: f"{k}: {m}")


def test_the_table_covers_every_recorded_reference():
    assert set(TORCHVISION) == set(TORCHVISION_CONSTRUCTORS)


@pytest.mark.parametrize("name", sorted(META_ONLY))
def test_big_models_line_up_with_torchvision_tensor_by_tensor(name):
    from netspec._torchvision import meta_model
    spec, variant, _ = TORCHVISION[name]
    G = netspec.lower(netspec.load(SPECS / spec, variant=variant))
    with torch.device("meta"):
        ours = netspec.compile(G, seed=None)
    theirs = meta_model(name).state_dict()
    assert read_key_list(f"torchvision/{name}") == list(theirs)
    assert [tuple(t.shape) for t in ours.state_dict().values()] == [tuple(t.shape) for t in theirs.values()]
    from netspec.weights import match
    report = match({k: tuple(v.shape) for k, v in ours.state_dict().items()}, theirs,
                   ref_keys=read_key_list(f"torchvision/{name}"))
    assert report.how == "reference names" and len(report.matches) == len(theirs)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n
                                  for n in TORCHVISION if n not in META_ONLY])
def test_torchvision_checkpoint_imports_and_matches(name, tmp_path):
    spec, variant, size = TORCHVISION[name]
    ref = torchvision_model(name)
    # the recorded key list is torchvision's (tools/gen_reference_keys.py keeps it current)
    assert read_key_list(f"torchvision/{name}") == list(ref.state_dict())
    # both formats; the big ones in safetensors (faster to write and read)
    path = tmp_path / (f"{name}.safetensors" if name in BIG or len(name) % 2 else f"{name}.pth")
    if path.suffix == ".pth":
        torch.save({"model": ref.state_dict(), "epoch": 3}, path)  # a training checkpoint holding it
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    ours = netspec.build(SPECS / spec, variant=variant, weights=path)

    # the input from its own generator: the global one's state depends on which tests ran before
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    ref.eval(), ours.eval()
    with torch.no_grad():
        assert_same({"logits": ours(x)}, {"logits": ref(x)})
    ref.train(), ours.train()
    with torch.no_grad():
        torch.manual_seed(1)
        theirs = outputs(ref(x), TV_OUTPUT_ORDER.get(name, ("logits",)))
        torch.manual_seed(1)
        mine = outputs(ours(x), ours.output_names)
    assert len(mine) == (1 + len(TV_OUTPUT_ORDER[name]) - 1 if name in AUX else 1)
    assert_same(mine, theirs)
    # the running statistics moved the same way
    for (k, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, msg=lambda m: f"{k}: {m}")

    # and back: netspec's tensors under torchvision's names load strictly into the constructor's model
    from netspec.errors import SourceLoc
    from netspec.weights import reference_state_dict
    ref.load_state_dict(reference_state_dict(ours, read_key_list(f"torchvision/{name}"), where=SourceLoc()),
                        strict=True)
    for a, b in zip(ref.state_dict().values(), ours.state_dict().values()):
        assert a.data_ptr() != b.data_ptr() and torch.equal(a, b)
