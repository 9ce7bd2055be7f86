"""The spec language as pydantic models, and `load_spec` (YAML file → validated `Spec`).

Every layer entry is `{type: ..., name?, inputs?, repeat?, when?, **params}`.
`type` is a primitive op (`netspec.ops`), a block of the package library
(`netspec/blocks/*.yaml`) or a block defined in the spec's own `blocks:`.
Entries form a discriminated union on `type`: each op and library block gets
its own model generated from one definition (the op's `Params`, the
template's `params:`), so unknown keys, wrong types and missing values are
caught here, each with its `file:line:col`, and the union is what
`netspec schema` exports for editors.

Values may be expressions (`$in * 2`, see `netspec.expr`); they are checked
for type after they are evaluated, during lowering.
"""
from __future__ import annotations

import copy
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, StringConstraints, Tag, ValidationError,
                      ValidationInfo, create_model, field_validator, model_validator)
from pydantic_core import PydanticCustomError
from pydantic_core import PydanticUndefined

from . import ops
from .errors import Issue, SpecError, did_you_mean
from .limits import MAX_CHANNELS, MAX_REPEAT
from .overrides import apply_overrides
from .recipe import Recipe
from .spec_scaling import Scaling, Variant, VariantName
from .spec_types import Expr, Model, ModuleName, ModulePath, Name
from .yaml_loader import Locations, load_yaml


# --------------------------------------------------------------------------- entries

class EntryBase(Model):
    """Fields every layer entry has, whatever its type."""

    # strict: `out: true` is not 1 and `kernel: 3.0` is not 3 (pairs still accept [h, w] lists)
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Optional[ModuleName] = Field(None, description="name of this entry; other entries refer to it by this name")
    inputs: Optional[Union[str, list[str]]] = Field(
        None, description="names of the entries this one reads (default: the previous entry); for a "
                          "repeated entry f: f.0, f.-1 one repeat, f.* all of them")
    repeat: Union[Annotated[int, Field(ge=0, le=MAX_REPEAT)], Expr] = Field(
        1, description="repeat the entry; only the first repeat keeps its `stride`")
    when: Union[bool, Expr] = Field(True, description="include the entry only if this is true")

    @model_validator(mode="before")
    @classmethod
    def _required_from_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        # `defaults: {maxpool: {kernel: 2}}` may supply a parameter the entry type requires.
        defaults = (info.context or {}).get("defaults")
        if not (defaults and isinstance(value, dict) and isinstance(value.get("type"), str)):
            return value
        given = defaults.get(ops.ALIASES.get(value["type"], value["type"]))
        if not isinstance(given, dict):
            return value
        missing = {k: v for k, v in given.items()
                   if k not in value and k in cls.model_fields and cls.model_fields[k].is_required()}
        return {**value, **missing} if missing else value


def _expressible(annotation: Any) -> Any:
    return Union[annotation, Expr]


def _entry_model(type_names: list[str], fields: dict[str, tuple[Any, Any]], doc: str) -> type[EntryBase]:
    name = "".join(part.capitalize() for part in type_names[0].split("_")) + "Entry"
    return create_model(
        name,
        __base__=EntryBase,
        __doc__=doc,
        type=(Literal[tuple(type_names)], ...),  # type: ignore[valid-type]
        **fields,
    )


def _op_entry_model(op: ops.Op) -> type[EntryBase]:
    fields = {}
    for fname, finfo in op.Params.model_fields.items():
        default = finfo.default if finfo.default is not PydanticUndefined else ...
        annotation = Annotated[(finfo.annotation, *finfo.metadata)] if finfo.metadata else finfo.annotation
        fields[fname] = (_expressible(annotation), Field(default, description=finfo.description))
    aliases = [a for a, target in ops.ALIASES.items() if target == op.name]
    return _entry_model([op.name, *aliases], fields, op.doc)


class CustomEntry(EntryBase):
    """A block defined in the spec's own `blocks:` (checked against its `params:` after parsing)."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra=lambda schema: schema.update(
        {"not": {"properties": {"type": {"enum": sorted(_ENTRY_MODELS)}}, "required": ["type"]}}))
    type: str

    @model_validator(mode="after")
    def _known_type(self, info: ValidationInfo) -> "CustomEntry":
        # Unknown types are reported with the other schema errors; the spec's own block
        # names come in through the validation context (they are parsed in the same pass).
        user_blocks = (info.context or {}).get("user_blocks")
        if user_blocks is not None and "$" not in self.type and self.type not in user_blocks:
            choices = sorted({*_ENTRY_MODELS, *user_blocks})
            raise PydanticCustomError("unknown_type", "unknown type '{type}'",
                                      {"type": self.type, "hint": did_you_mean(self.type, choices, "types")})
        return self


PARAM_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "number": float,
    "bool": bool,
    "str": str,
    "activation": Union[Literal[tuple([*ops.ACTIVATIONS, "swish", "none"])], None],  # type: ignore[misc]
    "ints": list[int],
    "any": Any,
}


class ParamDecl(Model):
    """One parameter of a block template."""

    type: Literal[tuple(PARAM_TYPES)] = "any"  # type: ignore[valid-type]
    default: Any = Field(None, description="omit to make the parameter required")
    doc: str = ""

    @property
    def required(self) -> bool:
        return "default" not in self.model_fields_set


class _TemplateBase(Model):
    """A composite block defined as data: parameters, derived variables and a body of entries."""

    doc: str = ""
    params: dict[Name, ParamDecl] = Field(default_factory=dict)
    vars: dict[Name, Any] = Field(default_factory=dict, description="derived values, evaluated in order")
    output: Optional[Name] = Field(None, description="entry whose output is the block's output (default: last)")

    def bind(self, given: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
        """Parameters with defaults filled in, and a list of (param, message, hint) problems."""
        problems = []
        bound = {}
        for key in given:
            if key not in self.params:
                problems.append((key, f"unknown parameter '{key}'", did_you_mean(key, list(self.params), "parameters")))
        for key, decl in self.params.items():
            if key in given:
                bound[key] = given[key]
            elif decl.required:
                problems.append((key, f"missing required parameter '{key}'",
                                 f"{key}: {decl.doc}" if decl.doc else f"add `{key}:`"))
            else:
                bound[key] = copy.deepcopy(decl.default)
        return bound, problems


def _template_model(entry: Any) -> type[_TemplateBase]:
    """The template model over a given entry union (library blocks are parsed before that union includes them)."""
    return create_model("BlockTemplate", __base__=_TemplateBase, __doc__=_TemplateBase.__doc__,
                        body=(list[entry], Field(description="the entries of the block, in order")))


def _block_entry_model(type_name: str, template: _TemplateBase) -> type[EntryBase]:
    fields = {}
    for pname, decl in template.params.items():
        default = ... if decl.required else decl.default
        fields[pname] = (_expressible(PARAM_TYPES[decl.type]), Field(default, description=decl.doc or None))
    return _entry_model([type_name], fields, template.doc)


# The union of entry models. Filled once the block library is loaded (below).
_ENTRY_MODELS: dict[str, type[EntryBase]] = {}


# Library block names the spec being validated defines itself: its own block wins (a library that
# gains a block must not break a spec that already had one of that name). Set by `spec_from_data`.
_OWN_BLOCKS: ContextVar[frozenset] = ContextVar("own_blocks", default=frozenset())


def _entry_tag(value: Any) -> str:
    t = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if isinstance(t, str):
        canonical = ops.ALIASES.get(t, t)
        if canonical in _ENTRY_MODELS and canonical not in _OWN_BLOCKS.get():
            return canonical
    return "custom"


def _build_entry_union():
    members = [Annotated[m, Tag(tag)] for tag, m in _ENTRY_MODELS.items()]
    members.append(Annotated[CustomEntry, Tag("custom")])
    return Annotated[Union[tuple(members)], Discriminator(_entry_tag)]  # type: ignore[valid-type]


for _op in ops.OPS.values():
    if _op.name != "input":
        _ENTRY_MODELS[_op.name] = _op_entry_model(_op)

# Library templates are parsed with entries that are ops or (not yet known) blocks.
Entry = _build_entry_union()
_LibraryTemplate = _template_model(Entry)


# --------------------------------------------------------------------------- validation with locations

def _clean_loc(loc: tuple, data: Any) -> tuple:
    """Drop the union tags pydantic inserts into error locations, keep the data path."""
    path: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part not in _ENTRY_MODELS and part != "custom":
            path.append(part)  # a missing key: report at the enclosing mapping
            node = None
    return tuple(path)


def _hint_for(err: dict, path: tuple, data: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = path[-1] if path else ""
        parent = data
        for p in path[:-1]:
            parent = parent[p]
        allowed = _allowed_keys(parent, path[:-1], data)
        return did_you_mean(str(key), allowed, "keys")
    if kind == "missing":
        return f"add `{path[-1]}:`" if path else ""
    if kind == "unknown_type":
        return err["ctx"]["hint"]
    if kind == "module_name":
        return ("module names become Python attributes (state_dict keys, `self.<name>` in ejected code): "
                "rename it, e.g. with a suffix (`training_`)")
    if kind in ("string_pattern_mismatch",) and path and path[-1] == "name":
        return "names are identifiers: letters, digits and underscores, not starting with a digit"
    if kind == "less_than_equal":
        if path and path[-1] == "repeat":
            return "no network repeats one entry this often (repeats include any depth multiplier or variant)"
        return "netspec bounds every size a spec controls (netspec/limits.py); a value this large is usually a typo"
    if "int" in kind or "float" in kind:
        return "a number or an expression such as $in * 2"
    return ""


def _model_at(path: tuple) -> Optional[type[BaseModel]]:
    """The model of the mapping at `path` when the path goes through plain model fields (`train.optimizer`)."""
    import typing

    model: Any = Spec
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        if typing.get_origin(ann) is Union:  # Optional[Model]
            ann = next((a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _allowed_keys(parent: Any, parent_path: tuple, root: Any) -> list[str]:
    if isinstance(parent, dict) and "type" in parent:
        model = _ENTRY_MODELS.get(_entry_tag(parent))
        if model is not None:
            return list(model.model_fields)
    if parent_path == ():
        return list(Spec.model_fields)
    model = _model_at(parent_path)
    if model is not None:
        return list(model.model_fields)
    for model in (Stage, InputSpec, AuxHead, BlockTemplate, ParamDecl):
        keys = {f.alias or k for k, f in model.model_fields.items()}  # as written: `for`, not `for_`
        if isinstance(parent, dict) and len(keys & set(parent)) >= 1:
            return list(keys)
    return []


def _validate(model: type[BaseModel], data: Any, locs: Locations, base: tuple = (), context: dict | None = None):
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        issues = []
        root = data
        for err in exc.errors():
            path = _clean_loc(err["loc"], root)
            if err["type"] == "unknown_type":
                path += ("type",)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                loc = locs.loc(base + path, key=True)
                msg = f"unknown key '{path[-1]}'"
            else:
                loc = locs.loc(base + path)
                if err["type"] not in ("missing",) and "input" in err and not isinstance(err["input"], (dict, list)):
                    got = repr(err["input"])
                    msg += f" (got {got if len(got) <= 60 else got[:57] + '...'})"
            issues.append(Issue(loc, msg, _hint_for(err, path, root)))
        raise SpecError(_dedupe(issues)) from None


def _dedupe(issues: list[Issue]) -> list[Issue]:
    # A value that fails a union (say int-or-expression) yields one error per member: keep the first.
    seen, out = set(), []
    for i in issues:
        key = (i.loc.line, i.loc.col, i.loc.path)
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out


@lru_cache(maxsize=None)
def library() -> dict[str, _TemplateBase]:
    """The package's block library: every `netspec/blocks/*.yaml` file."""
    out: dict[str, BlockTemplate] = {}
    for path in sorted((Path(__file__).parent / "blocks").glob("*.yaml")):
        data, locs = load_yaml(path)
        for name, raw in data.items():
            if name in out or ops.is_op(name):
                raise SpecError(f"block '{name}' is defined twice", locs.loc((name,), key=True))
            out[name] = _validate(_LibraryTemplate, raw, locs, (name,))
    return out


for _name, _template in library().items():
    _ENTRY_MODELS[_name] = _block_entry_model(_name, _template)
Entry = _build_entry_union()  # noqa: F811 - now with the library blocks
BlockTemplate = _template_model(Entry)





# --------------------------------------------------------------------------- the spec

class InputSpec(Model):
    channels: Annotated[int, Field(ge=1, le=65536, strict=True)] = 3
    size: Annotated[ops.PosPair, Field(description="spatial size, int or [h, w] (at most 65536)")]

    @field_validator("size")
    @classmethod
    def _sane_size(cls, size: tuple) -> tuple:
        if max(size) > 65536:
            raise ValueError(f"input size {list(size)} is larger than 65536 pixels per side")
        return size


class Stage(Model):
    """A stage: a list of entries. With `for` and `in` it is a template of several stages, one per item
    of the list `in` gives (derived stages: RegNet's stages from its per-block widths)."""

    name: Optional[ModuleName] = Field(None, description="stage name; in a derived stage, a prefix numbered from 1")
    doc: str = ""
    for_: Optional[Union[Name, Annotated[list[Name], Field(min_length=1, max_length=16)]]] = Field(
        None, alias="for", description="derived stages: the variable(s) bound to each item of `in` "
                                       "([width, depth] unpacks an item [w, d])")
    in_: Optional[Expr] = Field(None, alias="in", description="derived stages: an expression giving the list "
                                                              "of items, one stage each, e.g. runs($block_widths)")
    vars: dict[Name, Any] = Field(default_factory=dict, description=(
        "variables of this stage's entries, evaluated in order after the spec's vars (and `for`)"))
    blocks: list[Entry]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _for_and_in(self) -> "Stage":
        if (self.for_ is None) != (self.in_ is None):
            raise ValueError("derived stages need both `for` (the variables) and `in` (the list)")
        return self


class AuxHead(Model):
    """A side classifier attached to a named point; its logits are returned in training only."""

    name: ModuleName
    at: str = Field(description="name (or scope) of the entry whose output feeds the head")
    scope: Optional[ModulePath] = Field(
        None, description="module path of the head (default aux.<name>); a path inside a stage, e.g. "
                          "stages.mixed6.AuxLogits, registers its parameters where the reference does")
    # at least one layer: an empty head would return its attach point's features as 'logits' (and
    # eject has no module to write for it)
    layers: Annotated[list[Entry], Field(min_length=1)]  # type: ignore[valid-type]


class Spec(Model):
    """A whole network."""

    name: Name
    doc: str = ""
    reference: str = Field("", description="the implementation this spec reproduces")
    reference_keys: Optional[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+/[A-Za-z0-9_]+$")]] = Field(
        None, description="the reference's state-dict key names, a list in netspec/reference_keys "
                          "(e.g. torchvision/efficientnet_b0): checkpoints are matched by these names and "
                          "--save-as writes them")
    input: InputSpec
    num_classes: Annotated[int, Field(ge=1, le=MAX_CHANNELS, strict=True)] = 1000
    vars: dict[Name, Any] = Field(default_factory=dict, description="global variables usable as $name")
    defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="default parameters per op or block type")
    drop_path_rate: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="stochastic depth: counted stage entry i of n gets $drop_path = rate * i / n "
                         "(see drop_path_counts, drop_path_spread)")
    drop_path_counts: Literal["stage_entries", "blocks"] = Field(
        "stage_entries", description="which entries drop_path_rate spreads over: every stage entry "
                                     "(repeats unrolled), or only stage entries whose type is a block "
                                     "(torchvision's EfficientNet and ConvNeXt count blocks)")
    drop_path_spread: Literal["index/total", "index/(total-1)"] = Field(
        "index/total", description="rate * i / n (torchvision's EfficientNet, timm), or rate * i / (n - 1) "
                                   "(torchvision's ConvNeXt: the last block gets the full rate)")
    blocks: dict[Name, BlockTemplate] = Field(default_factory=dict, description="block types defined by this spec")
    stem: list[Entry] = Field(default_factory=list)  # type: ignore[valid-type]
    stages: list[Stage] = Field(default_factory=list)
    head: list[Entry] = Field(default_factory=list)  # type: ignore[valid-type]
    aux_heads: list[AuxHead] = Field(default_factory=list)
    scaling: Scaling = Field(default_factory=Scaling, description="compile-time scaling policies")
    variants: dict[VariantName, Variant] = Field(
        default_factory=dict, description="named presets of the family, chosen with --variant")
    train: Optional[Recipe] = Field(None, description="training recipe for `netspec train` (netspec.recipe)")

    _locs: Optional[Locations] = PrivateAttr(None)

    @model_validator(mode="after")
    def _has_body(self) -> "Spec":
        if not (self.stem or self.stages or self.head):
            raise ValueError("the network is empty: give at least one entry in stem, stages or head")
        return self

    @property
    def locs(self) -> Locations:
        return self._locs or Locations(f"<{self.name}>")

    def templates(self) -> dict[str, _TemplateBase]:
        return {**library(), **self.blocks}


def _check_custom_entries(spec: Spec, locs: Locations) -> None:
    """Entries whose type is neither an op nor a library block must name a block of `spec.blocks`."""
    issues: list[Issue] = []
    templates = spec.templates()

    def check(entries: list, path: tuple):
        for i, e in enumerate(entries):
            if not isinstance(e, CustomEntry) or "$" in e.type:
                continue  # a type chosen by an expression is checked when it is evaluated
            p = path + (i,)
            if e.type not in templates:
                choices = sorted({*ops.OPS, *templates} - {"input"})
                issues.append(Issue(locs.loc(p + ("type",)), f"unknown type '{e.type}'",
                                    did_you_mean(e.type, choices, "types")))
                continue
            _, problems = templates[e.type].bind({**spec.defaults.get(e.type, {}), **(e.model_extra or {})})
            for key, msg, hint in problems:
                at = locs.loc(p + (key,), key=True) if key in (e.model_extra or {}) else locs.loc(p)
                issues.append(Issue(at, f"{msg} of block '{e.type}'", hint))

    check(spec.stem, ("stem",))
    for si, st in enumerate(spec.stages):
        check(st.blocks, ("stages", si, "blocks"))
    check(spec.head, ("head",))
    for ai, aux in enumerate(spec.aux_heads):
        check(aux.layers, ("aux_heads", ai, "layers"))
    for bname, tpl in spec.blocks.items():
        if ops.is_op(bname):
            issues.append(Issue(locs.loc(("blocks", bname), key=True),
                                f"block '{bname}' shadows the primitive op '{ops.get_op(bname).name}'",
                                "choose another name (a block may shadow a library block, not an op)"))
        check(tpl.body, ("blocks", bname, "body"))
    if issues:
        raise SpecError(issues)


def spec_from_data(data: Any, locs: Locations) -> Spec:
    if not isinstance(data, dict):
        raise SpecError("a spec must be a mapping at the top level", locs.loc(()),
                        "start with `name:`, `input:`, `stages:`")
    user_blocks = data.get("blocks") if isinstance(data.get("blocks"), dict) else {}
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    token = _OWN_BLOCKS.set(frozenset(b for b in user_blocks if isinstance(b, str) and b in library()))
    try:
        spec = _validate(Spec, data, locs, context={"user_blocks": set(user_blocks), "defaults": defaults})
    finally:
        _OWN_BLOCKS.reset(token)
    spec._locs = locs
    _check_custom_entries(spec, locs)
    _check_stage_names(spec, locs)
    _check_aux_weights(spec, locs)
    return spec


def shadowed_library_blocks(spec: Spec) -> list[Issue]:
    """Notes for the spec's blocks that have a library block's name: the spec's own is used
    (in the spec; library blocks keep using the library's). `netspec validate` prints them."""
    return [Issue(spec.locs.loc(("blocks", name), key=True),
                  f"block '{name}' shadows the library block of that name; this spec's own is used",
                  "library blocks that use one keep the library's")
            for name in spec.blocks if name in library()]


def _check_aux_weights(spec: Spec, locs: Locations) -> None:
    if spec.train is None:
        return
    heads = [a.name for a in spec.aux_heads]
    for name in spec.train.aux_weights:
        if name not in heads:
            raise SpecError(Issue(locs.loc(("train", "aux_weights", name), key=True),
                                  f"no auxiliary head '{name}'",
                                  did_you_mean(name, heads, "aux heads") if heads else "this spec has no aux_heads"))


def _check_stage_names(spec: Spec, locs: Locations) -> None:
    seen: dict[str, int] = {}
    for i, stage in enumerate(spec.stages):
        if stage.name is None:
            continue
        if stage.name in seen:
            raise SpecError(Issue(locs.loc(("stages", i, "name")), f"duplicate stage name '{stage.name}'",
                                  f"stages[{seen.get(stage.name)}] has it already; stage names must be unique"))
        seen[stage.name] = i




def load_spec(source: str | Path, *, overrides: list[str] | None = None, text: str | None = None) -> Spec:
    """Read and validate a spec (no scaling, no lowering)."""
    data, locs = load_yaml(source, text)
    if overrides:
        data = apply_overrides(data, overrides, locs, Spec)
    return spec_from_data(data, locs)


def json_schema() -> dict:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "netspec network spec"
    return schema
