"""Record torchvision's state-dict key names for every zoo spec that has a torchvision counterpart.

    python tools/gen_reference_keys.py

writes `netspec/reference_keys/torchvision/<constructor>.keys`: one line per module that owns
tensors, `<module path> <tensor name> ...`, in the order torchvision registers them (= the
order of `state_dict()`). Specs name their list with `reference_keys: torchvision/<constructor>`;
`netspec build --weights` matches a torchvision checkpoint by these names and `--save-as
torchvision` writes them, without torchvision installed. The models are built on the meta
device: no memory, no download. `tests/test_interop_torchvision.py` checks the files are current.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netspec.reference_keys import TORCHVISION_CONSTRUCTORS, format_key_list  # noqa: E402


def torchvision_keys(constructor: str) -> list[str]:
    from netspec._torchvision import meta_model
    kwargs = {"aux_logits": True, "init_weights": False} if constructor in ("googlenet", "inception_v3") else {}
    return list(meta_model(constructor, **kwargs).state_dict())


def main() -> None:
    out = ROOT / "netspec" / "reference_keys" / "torchvision"
    out.mkdir(parents=True, exist_ok=True)
    for name in TORCHVISION_CONSTRUCTORS:
        (out / f"{name}.keys").write_text(format_key_list(torchvision_keys(name), f"torchvision.models.{name}"))
    print(f"wrote {len(TORCHVISION_CONSTRUCTORS)} key lists to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
