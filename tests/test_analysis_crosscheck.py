"""Cross-check of the static analysis against torch, for every shipped spec.

The compiled module's `sum(p.numel())` must equal the analysed parameters
(auxiliary heads included: the module holds them), and
`torch.utils.flop_counter.FlopCounterMode` total / 2 must equal the
`reference` MACs, at the spec's resolution and at a smaller one. To stay fast
the modules are built on the `meta` device (shapes only, no weights, no
arithmetic): FlopCounterMode counts the same dispatched ops either way, which
`test_meta_counts_equal_real_counts` checks on a real forward.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from netspec.analysis import analyze  # noqa: E402
from netspec.api import compile  # noqa: E402
from netspec.errors import SpecError  # noqa: E402
from netspec.lower import lower  # noqa: E402
from netspec.scale import apply_scaling  # noqa: E402
from netspec.spec import load_spec  # noqa: E402

from conftest import SPECS  # noqa: E402

ALL_SPECS = sorted(SPECS.rglob("*.yaml"))


def second_graph(spec, base: int):
    """The spec at a second resolution: 32 px smaller (4 for tiny inputs), or 32 px larger for
    networks with fixed-size pooling (a 7x7 average pool, Inception v3's aux head) that reject it."""
    smaller = base - 32 if base > 64 else base - 4
    try:
        return lower(apply_scaling(spec, resolution=smaller))
    except SpecError as exc:
        if "not positive" not in str(exc):
            raise
        return lower(apply_scaling(spec, resolution=base + 32))


def counted(G, device: str = "meta") -> tuple[int, int]:
    """(parameters, FlopCounterMode FLOPs / 2) of the compiled module, eval mode, batch 1."""
    with torch.device(device):
        model = compile(G, seed=None).eval()
        x = torch.zeros(1, *G.graph["input_shape"])
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    params = sum(p.numel() for p in model.parameters())
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return params, flops // 2


def test_every_spec_is_covered():
    assert len(ALL_SPECS) >= 6 and any(p.parent.name == "experiments" for p in ALL_SPECS)


@pytest.mark.parametrize("path", ALL_SPECS, ids=[str(p.relative_to(SPECS)) for p in ALL_SPECS])
def test_params_and_macs_match_torch(path):
    spec = load_spec(path)
    base = spec.input.size[0]
    graphs = [lower(apply_scaling(spec, resolution=base)), second_graph(spec, base)]
    assert graphs[0].graph["input_shape"] != graphs[1].graph["input_shape"]
    for G in graphs:
        res = G.graph["input_shape"][1]
        r = analyze(G)
        params, macs = counted(G)
        assert params == r.params_with_aux, f"{path.name} @ {res}"
        assert macs == r.network.costs.macs_reference, f"{path.name} @ {res}"


def test_meta_counts_equal_real_counts():
    G = lower(apply_scaling(load_spec(SPECS / "mobilenet_v2.yaml"), resolution=64))
    assert counted(G, "meta") == counted(G, "cpu")
    assert counted(G, "cpu")[1] == analyze(G).network.costs.macs_reference


def test_build_shows_the_same_totals(capsys):
    import json

    from netspec.cli import main

    path = SPECS / "mobilenet_v2.yaml"
    assert main(["build", str(path), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    r = analyze(lower(apply_scaling(load_spec(path))))
    net = r.network.costs
    assert (built["params"], built["params_with_aux"], built["buffers"], built["macs"], built["flops"]) == \
        (net.params, r.params_with_aux, net.buffers, net.macs, net.flops)
