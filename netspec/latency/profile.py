"""The device profile: what `netspec calibrate` measured and fitted, as JSON (no torch).

    {"format": "netspec-latency-profile", "version": 2,
     "device": {"cpu": ..., "machine": ..., "torch": ..., "threads": 2, "created": ...},
     "model": "t = call + macs * c_mac + elements * c_elem + spilled * c_spill, per cost class",
     "batches": {"1": {"forward_s": ..., "cache_bytes": 16777216,
                       "classes": {"conv2d/1x1": {"coef": [c_call, c_mac, c_elem, c_spill],
                                                  "samples": 12, "rel_error": 0.04}, ...}},
                 "8": {...}}}

Version 1 (no spill term: three coefficients, no `cache_bytes`) is still read, as a cache that
never spills.

A profile is input the user hands us: it is read with `json.loads`, bounded in size, and every
field is checked (finite, non-negative coefficients) before use; a bad one is a located error.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SourceLoc, SpecError
from .features import FEATURES

FORMAT = "netspec-latency-profile"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_PROFILE_BYTES = 1 << 20     # a profile is a few KB
MAX_CLASSES = 1000


def default_profile_path() -> Path:
    """Per user: $NETSPEC_DEVICE_PROFILE, else $XDG_CONFIG_HOME/netspec/device.json (~/.config by default)."""
    env = os.environ.get("NETSPEC_DEVICE_PROFILE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "netspec" / "device.json"


@dataclass
class ClassModel:
    coef: tuple[float, ...]            # seconds per call, per MAC, per element, per spilled element
    samples: int = 0
    rel_error: float = 0.0             # median |relative error| of the fit over its samples

    def time(self, x: tuple[float, float, float]) -> float:
        return sum(c * v for c, v in zip(self.coef, x))


@dataclass
class BatchModel:
    classes: dict[str, ClassModel]
    forward_s: float = 0.0             # per forward, outside the nodes (the module's own call)
    cache_bytes: float = math.inf      # the effective cache the spill term is fitted for


@dataclass
class Profile:
    device: dict
    batches: dict[int, BatchModel]
    path: str = ""
    model: str = "per-class non-negative least squares on (call, MACs, elements, spilled), relative error"
    extra: dict = field(default_factory=dict)

    @property
    def threads(self) -> int:
        return int(self.device.get("threads", 0))

    def batch_model(self, batch: int) -> tuple[int, BatchModel]:
        """The calibrated batch nearest `batch` on a log scale (features scale with the batch)."""
        b = min(self.batches, key=lambda k: (abs(math.log(k) - math.log(batch)), k))
        return b, self.batches[b]

    def describe(self) -> str:
        d = self.device
        return (f"{d.get('cpu', '?')}, torch {d.get('torch', '?')}, {d.get('threads', '?')} thread(s), "
                f"calibrated {d.get('created', '?')}")

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "device": self.device, "model": self.model,
                **self.extra,
                "batches": {str(b): {"forward_s": m.forward_s,
                                     **({"cache_bytes": m.cache_bytes} if math.isfinite(m.cache_bytes) else {}),
                                     "classes": {c: {"coef": list(cm.coef), "samples": cm.samples,
                                                     "rel_error": cm.rel_error}
                                                 for c, cm in sorted(m.classes.items())}}
                            for b, m in sorted(self.batches.items())}}


def save_profile(profile: Profile, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(profile.to_dict(), indent=1) + "\n")
    tmp.replace(path)


def _bad(path: str, where: str, message: str) -> SpecError:
    return SpecError(message, SourceLoc(path, path=where),
                     "write a new profile with `netspec calibrate` (it must be the JSON calibrate wrote)")


def _number(path: str, where: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v > 1e6:
        raise _bad(path, where, f"expected a finite number >= 0 (seconds), got {v!r}"[:200])
    return float(v)


def parse_profile(data, path: str = "<profile>") -> Profile:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad(path, "format", f"not a netspec device profile (format must be '{FORMAT}')")
    version = data.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise _bad(path, "version", f"profile version {version!r} is not one of "
                                    f"{', '.join(map(str, READABLE_VERSIONS))}"[:200])
    n_coef = len(FEATURES) - (1 if version == 1 else 0)     # version 1 had no spill term
    device = data.get("device", {})
    if not isinstance(device, dict) or not all(isinstance(v, (str, int, float)) for v in device.values()):
        raise _bad(path, "device", "expected an object of strings and numbers")
    batches_in = data.get("batches")
    if not isinstance(batches_in, dict) or not batches_in:
        raise _bad(path, "batches", "expected an object {batch: model} with at least one batch")
    batches: dict[int, BatchModel] = {}
    for key, bm in batches_in.items():
        where = f"batches.{key}"
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= 4096):
            raise _bad(path, where, f"a batch must be an integer from 1 to 4096, got {key!r}"[:200])
        if not isinstance(bm, dict) or not isinstance(bm.get("classes"), dict):
            raise _bad(path, where, "expected an object with 'classes'")
        if len(bm["classes"]) > MAX_CLASSES:
            raise _bad(path, where + ".classes", f"more than {MAX_CLASSES} cost classes")
        classes = {}
        for cls, cm in bm["classes"].items():
            w = f"{where}.classes.{cls[:80]}"
            if not isinstance(cm, dict) or not isinstance(cm.get("coef"), list) or len(cm["coef"]) != n_coef:
                raise _bad(path, w, f"expected {{'coef': [{', '.join(FEATURES[:n_coef])}]}}")
            coef = tuple(_number(path, f"{w}.coef", v) for v in cm["coef"]) + (0.0,) * (len(FEATURES) - n_coef)
            samples = cm.get("samples", 0)
            if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
                raise _bad(path, f"{w}.samples", f"expected a count, got {samples!r}"[:200])
            classes[cls] = ClassModel(coef, samples, _number(path, f"{w}.rel_error", cm.get("rel_error", 0.0)))
        cache = bm.get("cache_bytes", math.inf)
        if cache != math.inf and (isinstance(cache, bool) or not isinstance(cache, (int, float))
                                  or not 0 < cache <= 1 << 40):
            raise _bad(path, f"{where}.cache_bytes", f"expected a byte count from 1 to 2**40, got {cache!r}"[:200])
        batches[int(key)] = BatchModel(classes, _number(path, f"{where}.forward_s", bm.get("forward_s", 0.0)),
                                       float(cache))
    known = {"format", "version", "device", "model", "batches"}
    return Profile(dict(device), batches, path, str(data.get("model", ""))[:500],
                   {k: v for k, v in data.items() if k not in known})


def load_profile(path=None) -> Profile:
    """Read a profile (default: the per-user one); a missing or malformed file is a located SpecError."""
    p = Path(path).expanduser() if path else default_profile_path()
    if not p.is_file():
        raise SpecError(f"no device profile at {p}", SourceLoc(str(p)),
                        "run `netspec calibrate` first (it writes the per-user default), or pass --device FILE")
    if p.stat().st_size > MAX_PROFILE_BYTES:
        raise _bad(str(p), "", f"{p.stat().st_size:,} bytes is too large for a device profile")
    try:
        data = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(str(p), "", f"not valid JSON: {str(exc)[:200]}") from None
    return parse_profile(data, str(p))
