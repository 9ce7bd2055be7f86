"""The zoo by name: `mobilenet_v2`, `efficientnet_b3`, `resnet50`, `vgg16_bn` (no torch).

The zoo is the folder of specs: `specs/` in the repository, installed as `netspec/specs/` by the wheel
(the same files, mapped by setup.py). The names are derived from the specs themselves, so a spec
added to the folder is found by name without touching this module:

* a spec file `F.yaml` is the name `F` (the spec as written: its default configuration);
* each row `V` of its `variants:` table is one flat name, chosen by the first rule that gives a
  name no other row took:
    1. `V` itself when it already spells a model of the family: it starts with the family's
       leading letters (`resnet18` in resnet.yaml, `vgg16_bn` in vgg.yaml, `densenet121`);
    2. the reference model whose state-dict keys the row selects (`set: {reference_keys:
       torchvision/efficientnet_b3}` -> `efficientnet_b3`; `resnext50_32x4d`) - torchvision's spelling;
    3. `F_V`, lower case, other characters than letters, digits and dots as `_` (`mobilenet_v2_0.35`,
       `vgg_a_lrn`, `googlenet_paper`).

A path that exists always wins over a name; `resolve` turns a name into (spec file, variant).
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import yaml

from .errors import SourceLoc, SpecError, did_you_mean

PACKAGE = Path(__file__).resolve().parent


def zoo_dir() -> Path:
    """The installed zoo (`netspec/specs/`), else the repository's `specs/` beside the package."""
    installed = PACKAGE / "specs"
    return installed if installed.is_dir() else PACKAGE.parent / "specs"


def schema_file() -> Path:
    """The spec format's JSON Schema: `netspec/docs/` installed, `docs/` in the repository."""
    installed = PACKAGE / "docs" / "netspec.schema.json"
    return installed if installed.is_file() else PACKAGE.parent / "docs" / "netspec.schema.json"


@dataclass(frozen=True)
class ZooEntry:
    name: str                  # the flat name: efficientnet_b3
    family: str                # the spec file's stem: efficientnet
    path: Path                 # the spec file
    variant: Optional[str]     # the row of `variants:`, None for the spec as written
    doc: str                   # the variant's doc, else the spec's reference


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "_", text.lower()).strip("_")


def _family_entries(path: Path) -> list[ZooEntry]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []  # not a spec we can name; loading it by path reports why
    if not isinstance(data, dict):
        return []
    family = path.stem
    reference = str(data.get("reference") or data.get("doc") or "")
    entries = [ZooEntry(family, family, path, None, reference)]
    variants = data.get("variants")
    if not isinstance(variants, dict):
        return entries
    rows = {str(k): (v if isinstance(v, dict) else {}) for k, v in variants.items()}
    letters = re.match(r"[a-z]+", family.lower())
    prefix = letters.group(0) if letters else family.lower()
    taken = {family}
    named: dict[str, str] = {}
    for key in rows:  # rule 1 first, so that a row named vgg11 keeps the name over row A (also vgg11's keys)
        if key.lower().startswith(prefix) and key not in taken:
            named[key] = key
            taken.add(key)
    for key, row in rows.items():
        if key in named:
            continue
        ref = (row.get("set") or {}).get("reference_keys") if isinstance(row.get("set"), dict) else None
        ref_name = str(ref).rsplit("/", 1)[-1] if isinstance(ref, str) and ref else None
        for candidate in (ref_name, _normalise(f"{family}_{key}")):
            if candidate and candidate not in taken:
                named[key] = candidate
                taken.add(candidate)
                break
    for key, row in rows.items():
        if key in named:
            entries.append(ZooEntry(named[key], family, path, key, str(row.get("doc") or reference)))
    return entries


@lru_cache(maxsize=4)
def _index(folder: str) -> dict[str, ZooEntry]:
    index: dict[str, ZooEntry] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        for entry in _family_entries(path):
            index.setdefault(entry.name, entry)  # a family name wins over a later family's row
    return index


def index() -> dict[str, ZooEntry]:
    """Every zoo name -> its entry."""
    return _index(str(zoo_dir()))


def list_models(pattern: str = "*") -> list[str]:
    """The zoo's names matching a shell pattern (`*net_b?`, `resnet*`), sorted as timm.list_models does."""
    return sorted(n for n in index() if fnmatch.fnmatchcase(n.lower(), (pattern or "*").lower()))


def lookup(name: str) -> Optional[ZooEntry]:
    idx = index()
    if name in idx:
        return idx[name]
    folded = {_normalise(k): v for k, v in idx.items()}
    return folded.get(_normalise(name))


def looks_like_path(source: str) -> bool:
    return "/" in source or "\\" in source or source.lower().endswith((".yaml", ".yml", ".json"))


def resolve(source, variant: Optional[str] = None) -> tuple[object, Optional[str]]:
    """(spec path, variant) for a path or a zoo name; a path that exists always wins.

    `efficientnet_b3` -> (.../efficientnet.yaml, "b3"); `efficientnet` with variant "b3" -> the same.
    An unknown name is a `SpecError` with a 'did you mean' hint."""
    if not isinstance(source, str) or Path(source).exists() or looks_like_path(source):
        return source, variant
    entry = lookup(source)
    if entry is None:
        raise SpecError(f"no such file or zoo model: '{source}'", SourceLoc(source),
                        did_you_mean(source, list(index()), "names (netspec list shows them)"))
    if entry.variant is not None and variant is not None and variant != entry.variant:
        raise SpecError(f"'{entry.name}' is variant {entry.variant} of {entry.family}; it cannot also be "
                        f"variant {variant}", SourceLoc("--variant"),
                        f"use {entry.family} --variant {variant}, or leave --variant out")
    return str(entry.path), entry.variant if entry.variant is not None else variant


def spec_text_for_copy(entry: ZooEntry) -> str:
    """The family's spec file as written, its `$schema` line pointing at the schema by absolute path,
    so that a copy saved anywhere still finds it."""
    text = entry.path.read_text(encoding="utf-8")
    return re.sub(r"^# yaml-language-server: \$schema=.*$", schema_line(), text, count=1, flags=re.M)


def schema_line() -> str:
    return f"# yaml-language-server: $schema={schema_file().resolve().as_uri()}"
