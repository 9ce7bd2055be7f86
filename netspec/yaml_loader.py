"""YAML → plain Python data plus a map from spec paths to source positions.

Only `yaml.SafeLoader` is used (specs are data: no tags that build objects).
We compose the node tree ourselves so that every mapping key and value keeps
its line/column, which later stages use to point at the offending text.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import Issue, SourceLoc, SpecError

def format_path(path: tuple) -> str:
    """("stages", 3, "blocks", 1, "kernel") -> "stages[3].blocks[1].kernel"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_path(text: str) -> tuple:
    """"stages[2].blocks[-1].stride" -> ("stages", 2, "blocks", -1, "stride") (the inverse of format_path)."""
    return tuple(int(t) if re.fullmatch(r"-?\d+", t) else t for t in re.findall(r"[^.\[\]]+", text))


class Locations:
    """Source positions of every value (and every mapping key) in a YAML document."""

    def __init__(self, file: str):
        self.file = file
        self.values: dict[tuple, tuple[int, int]] = {}
        self.keys: dict[tuple, tuple[int, int]] = {}
        self.overrides: dict[tuple, str] = {}  # paths set on the command line -> "--set PATH=VALUE"

    def loc(self, path: tuple, key: bool = False) -> SourceLoc:
        """Location of `path`, falling back to the nearest enclosing node that has one."""
        table = self.keys if key else self.values
        p = tuple(path)
        for n in range(len(p), 0, -1):  # a value from the command line is reported there
            if p[:n] in self.overrides:
                return SourceLoc(self.overrides[p[:n]], 0, 0, format_path(path))
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


MAX_NODES = 200_000  # far above any network spec; stops alias bombs ("billion laughs") early
MAX_SPEC_BYTES = 1 << 20  # 1 MiB: 150x the zoo's largest spec; a 50 MB scalar took the parser minutes


def _convert(node: yaml.Node, path: tuple, locs: Locations, constructor: yaml.SafeLoader) -> Any:
    locs.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if len(locs.values) > MAX_NODES:
        raise SpecError(Issue(SourceLoc(locs.file, node.start_mark.line + 1, node.start_mark.column + 1,
                                        format_path(path)),
                              f"the spec expands to more than {MAX_NODES:,} values",
                              "YAML aliases (*name) are expanded where they are used; a spec never needs this many"))
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        # Specs are data: a tag such as !!python/object would build objects; refuse it.
        raise SpecError(Issue(SourceLoc(locs.file, node.start_mark.line + 1, node.start_mark.column + 1,
                                        format_path(path)),
                              f"unsupported YAML tag '{node.tag}'", "specs are plain data: remove the tag"))
    if isinstance(node, yaml.MappingNode):
        written = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
        constructor.flatten_mapping(node)  # resolves `<<:` merge keys (merged pairs first), as safe_load does
        out: dict = {}
        seen_written: set = set()
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if isinstance(key, list):
                key = tuple(key)
            try:
                hash(key)
            except TypeError:  # a mapping (or a list holding one) as a key: `{[a, {b: 1}]: x}`
                raise SpecError(Issue(SourceLoc(locs.file, key_node.start_mark.line + 1,
                                                key_node.start_mark.column + 1, format_path(path)),
                                      "a mapping or list cannot be a key",
                                      "keys are names: write `name: value`")) from None
            if key_node in written and key in seen_written:  # a key written twice; overriding a merged one is fine
                raise SpecError(Issue(
                    SourceLoc(locs.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                              format_path(path + (key,))),
                    f"duplicate key '{key}'",
                    "YAML would silently keep only the last value; remove one of them"))
            if key_node in written:
                seen_written.add(key)
            locs.keys[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(value_node, path + (key,), locs, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(child, path + (i,), locs, constructor) for i, child in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def decode_utf8(raw: bytes, file: str) -> str:
    """UTF-8 text of a spec file (a leading BOM is allowed); an undecodable byte is located."""
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = body[:exc.start]
        line = before.count(b"\n") + 1
        col = len(before.rsplit(b"\n", 1)[-1].decode("utf-8")) + 1  # characters, not bytes
        raise SpecError(Issue(SourceLoc(file, line, col),
                              f"byte 0x{body[exc.start]:02x} is not valid UTF-8 ({exc.reason})",
                              "specs are UTF-8 text: re-save the file as UTF-8 "
                              "(e.g. `iconv -f latin1 -t utf-8 old.yaml > new.yaml`)")) from None


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> SpecError:
    before = text[:exc.position]
    line, col = before.count("\n") + 1, len(before.rsplit("\n", 1)[-1]) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return SpecError(Issue(SourceLoc(file, line, col), f"character U+{code:04X} is not allowed in YAML",
                           "remove the control character (the file may not be a text file)"))


def load_yaml(source: str | Path, text: str | None = None) -> tuple[Any, Locations]:
    """Parse a YAML file (or `text`, reported as coming from `source`)."""
    file = str(source)
    too_big = ("a network spec is a few kilobytes; is this the right file?")
    if text is None:
        try:
            with open(source, "rb") as f:
                raw = f.read(MAX_SPEC_BYTES + 1)  # never more than the bound into memory
        except FileNotFoundError:
            raise SpecError(f"no such file: {file}", SourceLoc(file), "check the path") from None
        except OSError as exc:
            raise SpecError(f"cannot read spec: {exc}", SourceLoc(file)) from None
        if len(raw) > MAX_SPEC_BYTES:
            raise SpecError(Issue(SourceLoc(file, 1, 1), f"the spec is larger than {MAX_SPEC_BYTES:,} bytes", too_big))
        text = decode_utf8(raw, file)
    elif len(text) > MAX_SPEC_BYTES:
        raise SpecError(Issue(SourceLoc(file, 1, 1), f"the text is longer than {MAX_SPEC_BYTES:,} characters", too_big))
    locs = Locations(file)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow (NUL, ...)
        raise _reader_error(exc, text, file) from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise SpecError("the spec is empty", SourceLoc(file, 1, 1), "a spec needs `name`, `input` and at least one entry in `stem`, `stages` or `head`")
        data = _convert(root, (), locs, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(Issue(SourceLoc(file, line, col), f"YAML syntax error: {problem}",
                              "check indentation, colons and brackets near this position")) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {exc}", SourceLoc(file)) from None
    except RecursionError:
        raise SpecError("the spec is nested too deeply", SourceLoc(file, 1, 1),
                        "a network spec needs only a few levels of nesting") from None
    finally:
        loader.dispose()
    return data, locs
