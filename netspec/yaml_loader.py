"""YAML → plain Python data plus a map from spec paths to source positions.

Only `yaml.SafeLoader` is used (specs are data: no tags that build objects).
We compose the node tree ourselves so that every mapping key and value keeps
its line/column, which later stages use to point at the offending text.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import Issue, SourceLoc, SpecError

Path_ = tuple  # a path inside the spec: ("stages", 3, "blocks", 1, "kernel")


def format_path(path: tuple) -> str:
    """("stages", 3, "blocks", 1, "kernel") -> "stages[3].blocks[1].kernel"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class Locations:
    """Source positions of every value (and every mapping key) in a YAML document."""

    def __init__(self, file: str):
        self.file = file
        self.values: dict[tuple, tuple[int, int]] = {}
        self.keys: dict[tuple, tuple[int, int]] = {}

    def loc(self, path: tuple, key: bool = False) -> SourceLoc:
        """Location of `path`, falling back to the nearest enclosing node that has one."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                line, col = table[p]
                return SourceLoc(self.file, line, col, format_path(path))
            if not key and p in self.keys:
                line, col = self.keys[p]
                return SourceLoc(self.file, line, col, format_path(path))
            p = p[:-1]
        line, col = self.values.get((), (1, 1))
        return SourceLoc(self.file, line, col, format_path(path))


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _convert(node: yaml.Node, path: tuple, locs: Locations, constructor: yaml.SafeLoader) -> Any:
    locs.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        # Specs are data: a tag such as !!python/object would build objects; refuse it.
        raise SpecError(Issue(SourceLoc(locs.file, node.start_mark.line + 1, node.start_mark.column + 1,
                                        format_path(path)),
                              f"unsupported YAML tag '{node.tag}'", "specs are plain data: remove the tag"))
    if isinstance(node, yaml.MappingNode):
        constructor.flatten_mapping(node)  # resolves `<<:` merge keys, as safe_load does
        out: dict = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if isinstance(key, list):
                key = tuple(key)
            if key in out:
                raise SpecError(Issue(
                    SourceLoc(locs.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                              format_path(path + (key,))),
                    f"duplicate key '{key}'",
                    "YAML would silently keep only the last value; remove one of them"))
            locs.keys[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(value_node, path + (key,), locs, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(child, path + (i,), locs, constructor) for i, child in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def load_yaml(source: str | Path, text: str | None = None) -> tuple[Any, Locations]:
    """Parse a YAML file (or `text`, reported as coming from `source`)."""
    file = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(f"no such file: {file}", SourceLoc(file), "check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read spec: {exc}", SourceLoc(file)) from None
    locs = Locations(file)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise SpecError("the spec is empty", SourceLoc(file, 1, 1), "a spec needs at least `name`, `input` and `stages`")
        data = _convert(root, (), locs, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(Issue(SourceLoc(file, line, col), f"YAML syntax error: {problem}",
                              "check indentation, colons and brackets near this position")) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {exc}", SourceLoc(file)) from None
    finally:
        loader.dispose()
    return data, locs
