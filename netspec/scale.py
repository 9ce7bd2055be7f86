"""Compile-time scaling: a `Spec` → `Spec` transformation applied before lowering.

What scales is marked by the spec itself, with no per-family code:

* **width** - every literal integer under one of `scaling.width.keys` (default
  `out`) in a stem, stage, head or aux-head entry is multiplied by the width
  multiplier and rounded by the named rule (`make_divisible`, `slim`, `round`,
  see `netspec.rounding`). Expressions (`$num_classes`, `$c2`) are taken as
  written: they are derived values, not design channels. Opt-outs:
  `scaling.width.fixed` (entries that never scale) and
  `scaling.width.min_multiplier` (entries scaled by `max(multiplier, floor)`,
  MobileNetV2's last conv).
* **depth** - every stage entry that writes a literal `repeat:` is a repeated
  block; a stage's repeats are scaled together with timm's
  `_scale_stage_depth` (one entry: `ceil(n*d)` or `max(1, round(n*d))`).
  The multiplier may be one per stage; `fixed_stages` opt out.
* **resolution** - `scaling.resolution.size`, or the input size times a
  multiplier rounded to a multiple of `divisor`.
* **compound** - with `phi` set, depth, width and resolution are further
  multiplied by alpha^phi, beta^phi and gamma^phi.

A variant (`variants:` table) writes values into the spec - scaling
multipliers, input size, `vars.dropout`, `drop_path_rate` and any path under
`set:` - except those the user set on the command line with `--set`, which win.
Multipliers are exact decimals (`netspec.rounding.exact`), so `ceil(25 x 2.2)`
is 55. The result has the scaling applied, its `scaling:` reset to identity
and no `variants:`, so scaling it again changes nothing.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterator, Optional

from . import rounding
from .errors import Issue, SourceLoc, SpecError, did_you_mean
from .spec import Spec, spec_from_data
from .spec_scaling import Scaling, Variant, WidthRounding
from .yaml_loader import format_path, parse_path


@dataclass(frozen=True)
class Plan:
    """The resolved scaling of one build: what the family table reports."""

    variant: Optional[str]
    phi: Optional[float]
    width: Fraction
    depth: tuple[Fraction, ...]      # one multiplier per stage (fixed stages included, as 1)
    resolution: tuple[int, int]

    @property
    def depth_label(self) -> str:
        uniform = set(self.depth) <= {self.depth[0]} if self.depth else True
        values = self.depth[:1] if uniform else self.depth
        return ",".join(_decimal(d) for d in values) if values else "1"


def _decimal(x: Fraction, places: int = 3) -> str:
    return f"{float(x):.{places}f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- spec <-> data

def spec_data(spec: Spec) -> dict:
    """The spec as plain data, holding only what was written (so defaults can still fill the rest)."""
    return spec.model_dump(exclude_unset=True, by_alias=True)


def _set_path(data: dict, path: tuple, value: Any, where: SourceLoc) -> None:
    node = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
            node = node[part]
        else:
            raise SpecError(f"path '{format_path(path)}' does not exist at '{format_path(path[:depth + 1])}'", where)
    last = path[-1]
    if isinstance(node, list) and not (isinstance(last, int) and -len(node) <= last < len(node)):
        raise SpecError(f"index {last} out of range in '{format_path(path)}'", where)
    if not isinstance(node, (dict, list)):
        raise SpecError(f"path '{format_path(path)}' goes through a value that is not a mapping or list", where)
    if isinstance(value, dict) and isinstance(node, dict) and isinstance(node.get(last), dict):
        node[last] = _merged(node[last], value)  # a mapping is merged into the mapping already there
    else:
        node[last] = copy.deepcopy(value)


def _merged(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def _set_by_user(spec: Spec, path: tuple) -> bool:
    """True if `--set` wrote this path or one above it (apply_overrides records them in `locs.overrides`)."""
    return any(path[:k] in spec.locs.overrides for k in range(1, len(path) + 1))


# --------------------------------------------------------------------------- variants

def _variant_values(name: str, v: Variant) -> list[tuple[tuple, Any, str]]:
    """(path, value, field) for everything a variant writes."""
    # `set:` first, so the named fields (more specific) win over a mapping that also holds them
    out = [(parse_path(key), value, f"set.{key}") for key, value in v.set.items()]
    if v.width is not None:
        out.append((("scaling", "width", "multiplier"), v.width, "width"))
    if v.depth is not None:
        out.append((("scaling", "depth", "multiplier"), v.depth, "depth"))
    if v.resolution is not None:
        out.append((("scaling", "resolution", "size"), v.resolution, "resolution"))
    if v.phi is not None:
        out.append((("scaling", "compound", "phi"), v.phi, "phi"))
    if v.dropout is not None:
        out.append((("vars", "dropout"), v.dropout, "dropout"))
    if v.drop_path_rate is not None:
        out.append((("drop_path_rate",), v.drop_path_rate, "drop_path_rate"))
    return out


def _without_user_values(spec: Spec, path: tuple, value: Any) -> Any:
    """A variant's mapping minus the keys below it that `--set` wrote (the command line wins at any depth)."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        sub = path + tuple(parse_path(key)) if isinstance(key, str) else path + (key,)
        if sub not in spec.locs.overrides:
            out[key] = _without_user_values(spec, sub, v)
    return out


def apply_variant(spec: Spec, data: dict, name: str) -> dict:
    if name not in spec.variants:
        raise SpecError(f"unknown variant '{name}'", spec.locs.loc(("variants",), key=True),
                        did_you_mean(name, list(spec.variants), "variants") if spec.variants
                        else "this spec has no `variants:` table")
    data = copy.deepcopy(data)
    for path, value, field in _variant_values(name, spec.variants[name]):
        where = spec.locs.loc(("variants", name, *field.split(".", 1)))
        if path == ("vars", "dropout") and "dropout" not in data.get("vars", {}):
            raise SpecError(Issue(where, f"variant '{name}' sets dropout but the spec has no `vars.dropout`",
                                  "declare `vars: {dropout: ...}` and use `p: $dropout` in the head"))
        if not _set_by_user(spec, path):
            _set_path(data, path, _without_user_values(spec, path, value), where)
    return data


# --------------------------------------------------------------------------- multipliers

def _power(base: float, phi: float) -> Fraction:
    # integral phi keeps the power exact (1.1^2 = 1.21); otherwise it is irrational anyway
    if float(phi).is_integer():
        return rounding.exact(base) ** int(phi)
    return rounding.exact(float(base) ** float(phi))


def _stage_index(selector, n: int, names: list) -> Optional[int]:
    if isinstance(selector, int):
        return selector % n if -n <= selector < n else None
    return names.index(selector) if selector in names else None


def depth_multipliers(spec: Spec, policy: Scaling) -> list[Fraction]:
    """One exact depth multiplier per stage: the list or the single value (fixed stages are set to 1 by `plan`)."""
    locs, n = spec.locs, len(spec.stages)
    given = policy.depth.multiplier
    if isinstance(given, list) and len(given) != n:
        raise SpecError(f"scaling.depth.multiplier has {len(given)} values for {n} stages",
                        locs.loc(("scaling", "depth", "multiplier")), "give one multiplier per stage")
    depth = [rounding.exact(d) for d in given] if isinstance(given, list) else [rounding.exact(given)] * n
    return depth


def fixed_stage_indices(spec: Spec, policy: Scaling) -> set[int]:
    n, names = len(spec.stages), [st.name for st in spec.stages]
    out = set()
    for sel in policy.depth.fixed_stages:
        i = _stage_index(sel, n, names)
        if i is None:
            raise SpecError(f"scaling.depth.fixed_stages: no stage '{sel}'",
                            spec.locs.loc(("scaling", "depth", "fixed_stages")),
                            f"stages are 0..{n - 1} (negative from the end) or their names")
        out.add(i)
    return out


def input_size(spec: Spec, policy: Scaling, multiplier: Fraction, resolution: Optional[int]) -> tuple[int, int]:
    """--res, else the policy's size, else the spec's size times the multiplier, rounded to the divisor."""
    if resolution is not None:
        return (resolution, resolution)
    if policy.resolution.size is not None:
        return (policy.resolution.size, policy.resolution.size)
    div = policy.resolution.divisor
    h, w = (max(div, round(s * multiplier / div) * div) for s in spec.input.size)
    return (h, w)


def plan(spec: Spec, *, variant: Optional[str], resolution: Optional[int]) -> Plan:
    """Resolve the spec's policy into one width multiplier, per-stage depth multipliers and the input size."""
    policy, c = spec.scaling, spec.scaling.compound
    width = rounding.exact(policy.width.multiplier)
    depth = depth_multipliers(spec, policy)
    res_mult = rounding.exact(policy.resolution.multiplier)
    if c.phi is not None:
        width *= _power(c.beta, c.phi)
        depth = [d * _power(c.alpha, c.phi) for d in depth]
        res_mult *= _power(c.gamma, c.phi)
    fixed = fixed_stage_indices(spec, policy)
    depth = [Fraction(1) if i in fixed else d for i, d in enumerate(depth)]
    return Plan(variant, c.phi, width, tuple(depth), input_size(spec, policy, res_mult, resolution))


# --------------------------------------------------------------------------- width

def round_channels(value: int, multiplier: Fraction, rule: WidthRounding) -> int:
    """One channel count scaled by `multiplier` through the named rounding rule."""
    v = Fraction(value) * multiplier
    if rule.rule == "make_divisible":
        return rounding.make_divisible(v, rule.divisor, rule.min_value, rule.round_limit)
    if rule.rule == "slim":
        return rounding.slim_depth(v, rule.min_depth)
    return max(1, rounding.round_half_even(v))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scale_literal(value: Any, multiplier: Fraction, rule: WidthRounding) -> Any:
    """A literal channel count, or a list of them (Inception's `b3x3: [96, 128]`), scaled; anything else as is."""
    if _is_int(value):
        return round_channels(value, multiplier, rule)
    if isinstance(value, list) and value and all(_is_int(v) for v in value):
        return [round_channels(v, multiplier, rule) for v in value]
    return value


def entry_lists(data: dict, spec: Spec) -> Iterator[tuple[tuple, list[str], list]]:
    """(spec path, selectors naming the list, entries) for every entry list width scaling reaches."""
    yield ("stem",), ["stem"], data.get("stem", [])
    n = len(data.get("stages", []))
    for i, stage in enumerate(data.get("stages", [])):
        sels = [f"stages.{i}", f"stages.{i - n}"] + ([f"stages.{stage['name']}"] if stage.get("name") else [])
        yield ("stages", i, "blocks"), sels + [s + ".blocks" for s in sels], stage.get("blocks", [])
    yield ("head",), ["head"], data.get("head", [])
    for i, aux in enumerate(data.get("aux_heads", [])):
        yield ("aux_heads", i, "layers"), ["aux_heads", f"aux_heads.{aux['name']}"], aux.get("layers", [])


def entry_selectors(list_sels: list[str], index: int, entry: dict) -> set[str]:
    """Every way `fixed:` / `min_multiplier:` may name an entry: its list, or the list plus index or name."""
    out = set(list_sels)
    for s in list_sels:
        out.add(f"{s}.{index}")
        if entry.get("name"):
            out.add(f"{s}.{entry['name']}")
    return out


def scale_widths(data: dict, spec: Spec, policy: Scaling, width: Fraction) -> dict:
    w = policy.width
    used: set[str] = set()
    all_sels: set[str] = set()
    for path, list_sels, entries in entry_lists(data, spec):
        for j, entry in enumerate(entries):
            sels = entry_selectors(list_sels, j, entry)
            all_sels |= sels
            if sels & set(w.fixed):
                used |= sels & set(w.fixed)
                continue
            floors = [rounding.exact(f) for s, f in w.min_multiplier.items() if s in sels]
            used |= sels & set(w.min_multiplier)
            m = max([width, *floors])
            if m == 1:
                continue  # a multiplier of 1 leaves the network as written, even off the rounding grid
            for key in w.keys:
                if key in entry:
                    entry[key] = _scale_literal(entry[key], m, w.rounding)
    for field, selectors in (("fixed", w.fixed), ("min_multiplier", list(w.min_multiplier))):
        for s in selectors:
            if s not in used and s not in all_sels:
                raise SpecError(f"scaling.width.{field}: '{s}' names no entry",
                                spec.locs.loc(("scaling", "width", field)),
                                did_you_mean(s, sorted(all_sels), "entries"))
    return data


# --------------------------------------------------------------------------- depth

def scale_depths(data: dict, policy: Scaling, depth: tuple[Fraction, ...]) -> dict:
    """Scale each stage's written (literal) repeats together, as timm's `_scale_stage_depth`."""
    for stage, d in zip(data.get("stages", []), depth):
        if d == 1:
            continue
        blocks = stage.get("blocks", [])
        idx = [j for j, e in enumerate(blocks) if _is_int(e.get("repeat"))]
        if not idx:
            continue
        scaled = rounding.scale_stage_depth([blocks[j]["repeat"] for j in idx], d, policy.depth.rounding)
        for j, r in zip(idx, scaled):
            blocks[j]["repeat"] = r
    return data


# --------------------------------------------------------------------------- the pass

def variant_name(spec: Spec, variant: str) -> str:
    return f"{spec.name}_{re.sub(r'[^A-Za-z0-9_]', '_', variant)}"


def resolve(spec: Spec, *, variant: Optional[str] = None, phi: Optional[float] = None,
            resolution: Optional[int] = None) -> tuple[dict, Plan]:
    """The scaled spec data and the plan that produced it."""
    data = spec_data(spec)
    if variant is not None:
        data = apply_variant(spec, data, variant)
    if phi is not None:
        data.setdefault("scaling", {}).setdefault("compound", {})["phi"] = phi
    # validate what the variant wrote (a bad `set:` value is reported at its place in the file)
    varied = spec_from_data(data, spec.locs) if (variant is not None or phi is not None) else spec
    policy = varied.scaling
    p = plan(varied, variant=variant, resolution=resolution)
    data = scale_widths(data, spec, policy, p.width)
    data = scale_depths(data, policy, p.depth)
    data["input"] = {**data.get("input", {}), "size": list(p.resolution)}
    data.pop("scaling", None)
    data.pop("variants", None)
    if variant is not None:
        data["name"] = variant_name(spec, variant)
    return data, p


def apply_scaling(spec: Spec, *, variant: str | None = None, phi: float | None = None,
                  resolution: int | None = None) -> Spec:
    """Apply the spec's scaling policies (with a variant, --phi, --res) and return the scaled spec."""
    if variant is None and phi is None and resolution is None and spec.scaling == Scaling():
        return spec  # nothing to scale: the spec as validated
    data, _ = resolve(spec, variant=variant, phi=phi, resolution=resolution)
    return spec_from_data(data, spec.locs)
