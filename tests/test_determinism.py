"""Results that must not depend on which tests ran before in the process (issue 22).

EfficientNet's checkpoint tests failed only after other tests in the same xdist worker: with a
.safetensors file, `netspec.build(..., weights=FILE)` (built on the meta device, weights assigned)
kept the file's tensors as its parameters - views into one buffer at the file's byte offsets, so
their addresses were not 64-byte aligned, and CPU kernels took another code path than for the
reference's own (aligned) tensors: batch statistics differed in the rounding by up to 2e-5, and by
how much depended on the heap's state. Loaded parameters are now copies in memory of their own.
"""
from __future__ import annotations

import pytest

import netspec
from conftest import SPECS

torch = pytest.importorskip("torch")


def test_weights_from_safetensors_own_aligned_memory(tmp_path):
    from safetensors.torch import save_file
    model = netspec.build(SPECS / "lenet5.yaml")
    path = tmp_path / "lenet5.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded = netspec.build(SPECS / "lenet5.yaml", weights=path)
    tensors = list(loaded.state_dict().values())
    storages = {t.untyped_storage().data_ptr() for t in tensors}
    assert len(storages) == len(tensors)  # no parameter is a view into the file's buffer
    assert all(t.data_ptr() % 64 == 0 for t in tensors)
    for a, b in zip(tensors, model.state_dict().values()):
        assert torch.equal(a, b)


def test_safetensors_and_pth_weights_give_bit_identical_training_steps(tmp_path):
    """The same values through either file format: the same train-mode forward, bit for bit."""
    from safetensors.torch import save_file
    ref = netspec.build(SPECS / "mobilenet_v2.yaml", seed=3)
    state = ref.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pth")
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    results = []
    for name in ("w.safetensors", "w.pth"):
        model = netspec.build(SPECS / "mobilenet_v2.yaml", weights=tmp_path / name).train()
        torch.manual_seed(1)  # dropout draws the same mask
        with torch.no_grad():
            out = model(x)
        results.append((out, list(model.state_dict().values())))
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.equal(a, b)
