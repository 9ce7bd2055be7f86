"""`--set path=value` on a spec's raw data, before validation: `vars.width=1.4`,
`stages[2].blocks[0].stride=1`. Values are parsed by the spec file's own YAML loader (the same
size and tag limits), and every value set is recorded in `locs.overrides`, so an error in it points
at the command line instead of the file."""
from __future__ import annotations

import copy
from typing import Any, Optional

from pydantic import BaseModel

from .errors import SourceLoc, SpecError
from .spec_scaling import _Shorthand
from .yaml_loader import Locations, format_path, load_yaml, parse_path


def _shorthand_key(root: type[BaseModel], path: tuple) -> Optional[str]:
    """The main key of a policy that may be written as one value (`scaling.width: 1.4`), if `path` is one."""
    model: Any = root
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) and hasattr(model, "model_fields") else None
        if field is None:
            return None
        model = field.annotation
    return getattr(model, "SHORTHAND", None) if isinstance(model, type) and issubclass(model, _Shorthand) else None


def apply_overrides(data: dict, overrides: list[str], locs: Locations, root: type[BaseModel]) -> dict:
    """`--set path=value` on the raw data of a `root` model (the spec): `vars.width=1.4`."""

    data = copy.deepcopy(data)
    for item in overrides:
        where = SourceLoc("--set", 0, 0, item)
        if "=" not in item:
            raise SpecError(f"--set expects path=value, got '{item}'", where, "for example --set num_classes=10")
        path_text, value_text = item.split("=", 1)
        try:
            # the spec file's loader: the same size, node-count and tag limits as a file
            value = load_yaml(f"--set {path_text}", text=value_text)[0] if value_text.strip() else None
        except SpecError as exc:
            if "YAML syntax error" not in str(exc):
                raise
            raise SpecError(f"--set value '{value_text}' is not valid YAML", where,
                            "quote it for the shell, e.g. --set 'input.size=[160, 192]'") from None
        parts: list[Any] = list(parse_path(path_text))
        if not parts:
            raise SpecError(f"empty path in --set '{item}'", where)
        node = data
        for depth, part in enumerate(parts):
            if isinstance(node, list) and not isinstance(part, int):
                raise SpecError(f"--set path '{path_text}': '{format_path(tuple(parts[:depth]))}' is a list; "
                                f"index it with a number, not '{part}'", where)
            if not isinstance(node, (dict, list)):
                raise SpecError(f"--set path '{path_text}': '{format_path(tuple(parts[:depth]))}' is a value, "
                                "not a mapping or list", where)
            if depth == len(parts) - 1:
                break
            nxt = node[part] if (isinstance(node, dict) and part in node) or \
                (isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node)) else None
            if nxt is None:
                if isinstance(node, dict) and isinstance(part, str):
                    node[part] = {}
                    nxt = node[part]
                else:
                    raise SpecError(f"--set path '{path_text}' does not exist at '{format_path(tuple(parts[:depth + 1]))}'",
                                    where)
            node = nxt
        last = parts[-1]
        if isinstance(node, list) and not (isinstance(last, int) and -len(node) <= last < len(node)):
            raise SpecError(f"--set index {last} out of range in '{path_text}'", where)
        shorthand = _shorthand_key(root, tuple(parts))
        if shorthand and isinstance(node.get(last), dict) and not isinstance(value, (dict, list)):
            # `--set scaling.width=1.4` changes the multiplier and keeps the policy's other settings
            node[last][shorthand] = value
            parts.append(shorthand)
        else:
            node[last] = value
        locs.overrides[tuple(parts)] = f"--set {item}"  # errors in this value point at the command line
    return data
