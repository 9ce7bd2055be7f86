"""Lowering: a validated `Spec` → the graph IR (a `networkx.DiGraph` of primitive ops).

Blocks are expanded from their templates, repeats unrolled, names (`f`, and
`f.0`, `f.-1`, `f.*` for the repeats of `f`) resolved to nodes and every node's
shape inferred as it is added (templates need their input's channels: `$in`). The result is the single IR every later pass reads.

Graph attributes (`G.graph`):
    name, input_shape (C, H, W), num_classes, reference, train (the recipe as data, or None),
    outputs   {"logits": node, <aux head name>: node, ...}
    unused    nodes whose output nobody reads (a forgotten `inputs:`, usually)
    scopes    {scope: {"kind": stem|stage|block|head|aux, "type", "name", "params", ...}}; blocks also
              carry "loc", "stage", "aux" and "parent", stages and aux heads a "label"
    stages    [scope of each stage, in order]
Node attributes:
    op, kind, attrs (resolved), shape (batch excluded), inputs (ordered node ids),
    in_shapes, weights / buffers ({tensor: shape}), scope (enclosing scope),
    blocks (enclosing block scopes, outermost first), stage (stem | i | head | aux),
    part (the top-level scope: "stem", a stage scope, "head" or an aux head's scope),
    aux (bool), loc (SourceLoc of the spec entry that produced it), template (block trace)
Edges carry `shape` (the tensor on the edge).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

import networkx as nx
from pydantic import TypeAdapter, ValidationError

from . import ops
from .errors import Issue, SourceLoc, SpecError, did_you_mean
from .expr import ExprError, bare_name_hint, is_expression, substitute, variables
from .infer import infer_op
from .limits import MAX_GRAPH_NODES, MAX_REPEAT
from .spec import PARAM_TYPES, BlockTemplate, CustomEntry, EntryBase, Spec, library

COMMON_FIELDS = ("type", "name", "inputs", "repeat", "when")
# a reference to repeats of a named entry: `f.2`, `f.-1`, `f[-1]` (one repeat), `f.*` (all so far)
REPEAT_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.(-?[0-9]+)|\[(-?[0-9]+)\]|\.(\*))$")


@dataclass
class Context:
    """Where an entry is being lowered."""

    scope: str                     # enclosing scope, e.g. "stages.3.blocks.1"
    names: dict[str, str]          # visible names -> node ids ("input" and entry names)
    env: dict[str, Any]            # visible $variables
    stage: Any                     # "stem", stage index, "head" or "aux"
    aux: bool = False
    path: Optional[tuple] = None   # spec path of the entry list (None inside templates)
    call_loc: Optional[SourceLoc] = None  # user-visible location when inside templates
    trace: tuple = ()              # block templates we are inside
    blocks: tuple = ()             # enclosing block scopes
    unrolled: int = 0              # entries lowered so far in this list, repeats unrolled
    part: Optional[str] = None     # top-level part: "stem", a stage scope, "head" or an aux head scope
    defined: set = field(default_factory=set)  # names written in this body (a later part may shadow them)
    tpl_path: Optional[tuple] = None  # spec path of the body when inside a block the spec defines itself
    repeats: dict = field(default_factory=dict)  # entry name -> the outputs of its repeats, in order (`f.0`, `f.*`)
    in_library: bool = False       # inside a library block: block types resolve in the library


@lru_cache(maxsize=None)
def _adapter(kind: str) -> TypeAdapter:
    return TypeAdapter(PARAM_TYPES[kind])


def entry_params(e: EntryBase) -> dict:
    """The parameters written on an entry (not its defaults, so `defaults:` can fill them)."""
    if isinstance(e, CustomEntry):
        return dict(e.model_extra or {})
    return e.model_dump(exclude_unset=True, exclude=set(COMMON_FIELDS))


class Lowerer:
    def __init__(self, spec: Spec, aux: bool = True):
        self.spec = spec
        self.aux = aux
        self.templates = spec.templates()
        self.G = nx.DiGraph()
        self.block_index = 0
        self.top_entry: tuple = (None, None, 1)  # set by lower_entry: (context, index, repeat)
        self.total_blocks = 0
        self.global_env: dict = {}
        self.from_defaults: set = set()  # (type, parameter) pairs `defaults:` has supplied

    # ------------------------------------------------------------------ helpers
    def loc(self, ctx: Context, index: Optional[int], key: Optional[str] = None) -> SourceLoc:
        if ctx.path is not None and index is not None:
            path = ctx.path + (index,) + ((key,) if key else ())
            return self.spec.locs.loc(path)
        return ctx.call_loc or SourceLoc(self.spec.locs.file)

    def fail(self, ctx: Context, index: Optional[int], message: str, hint: str = "", key: Optional[str] = None):
        where = self.loc(ctx, index, key)
        if ctx.trace:
            inside = ""
            if ctx.tpl_path is not None and index is not None:
                tloc = self.spec.locs.loc(ctx.tpl_path + (index,))
                inside = f" (entry at {tloc.file}:{tloc.line}:{tloc.col} {tloc.path})"
            message = f"in block {' > '.join(ctx.trace)}{inside}: {message}"
        raise SpecError(Issue(where, message, hint))

    def fail_param(self, ctx: Context, index: Optional[int], type_name: str, key: str, message: str, hint: str = ""):
        """A bad parameter value: at the defaults line when `defaults:` supplied it, else at the entry."""
        where = self.defaults_loc(type_name, key)
        if where is None:
            self.fail(ctx, index, message, hint, key if not ctx.trace else None)
        at = self.loc(ctx, index)
        raise SpecError(Issue(where, f"{message} (a default, applied to the entry at {at.file}:{at.line}:{at.col} "
                                     f"{at.path})", hint))

    def resolve_value(self, value: Any, env: dict, ctx: Context, index: Optional[int], key: str) -> Any:
        try:
            return substitute(value, env)
        except ExprError as exc:
            hint = exc.hint
            if exc.bare_name:  # only here do we know the entry names in scope
                hint = bare_name_hint(exc.bare_name, env, [*ctx.names, *ctx.repeats])
            self.fail(ctx, index, f"{key}: {exc}", hint, key)

    def shape(self, node: str) -> ops.Shape:
        return self.G.nodes[node]["shape"]

    def input_env(self, env: dict, node: str) -> dict:
        s = self.shape(node)
        extra = {"in": s[0]}
        if len(s) == 3:
            extra.update(in_h=s[1], in_w=s[2])
        return {**env, **extra}

    # ------------------------------------------------------------------ entries
    def lower_entries(self, entries: list, ctx: Context, prev: str) -> str:
        ctx.unrolled = 0
        for i, e in enumerate(entries):
            prev = self.lower_entry(e, i, ctx, prev)
            ctx.names["prev"] = prev
        return prev

    def resolve_inputs(self, e: EntryBase, i: int, ctx: Context, prev: str,
                       own: Optional[list] = None) -> list[str]:
        """The node ids an entry reads. `own`: for an entry whose inputs gather its own repeats (`f.*`
        inside `f`), the outputs of its repeats so far; else None."""
        if e.inputs is None:
            return [prev]
        raw = e.inputs if isinstance(e.inputs, list) else [e.inputs]
        out = []
        for item in raw:
            value = self.resolve_value(item, ctx.env, ctx, i, "inputs")
            for name in value if isinstance(value, list) else [value]:
                out.extend(self.lookup(name, i, ctx, prev, own=(e.name, own) if own is not None else None))
        if not out:
            self.fail(ctx, i, f"inputs {e.inputs!r} name no tensor",
                      "a repeat group gathered with `name.*` is empty before its first repeat; "
                      "add another input (e.g. `input`)", "inputs")
        return out

    def lookup(self, name: Any, i: int, ctx: Context, prev: str, own: Optional[tuple] = None) -> list[str]:
        """Resolve one reference: `prev`, an entry name (its last repeat), `name.k` / `name.-k` /
        'name[-k]' (one repeat), `name.*` (every repeat so far, in order) or a full scope path."""
        if not isinstance(name, str):
            self.fail(ctx, i, f"inputs: expected entry names, got {name!r}", "names are strings", "inputs")
        if name == "prev":
            return [prev]
        m = REPEAT_REF.match(name)
        base = m.group(1) if m else name
        if m and own is not None and base == own[0]:  # the entry's own earlier repeats
            if m.group(4) is None:
                self.fail(ctx, i, f"'{name}': an entry cannot read one of its own repeats by index "
                                  "(its first repeat has none before it)",
                          f"'{base}.*' gathers the repeats before the current one (none in the first)", "inputs")
            return list(own[1])
        group = ctx.repeats.get(base)
        if group is None and base in ctx.names:
            group = [ctx.names[base]]  # `input`, or a name bound without repeats
        if m and group is not None:
            if m.group(4) is not None:  # name.*
                return list(group)
            k = int(m.group(2) if m.group(2) is not None else m.group(3))
            if not -len(group) <= k < len(group):
                n = len(group)
                listed = f"{base}.0" if n == 1 else f"{base}.0 .. {base}.{n - 1}"
                have = f"it has {n} repeat{'s' if n != 1 else ''} ({listed})" if n else "it has no repeats"
                self.fail(ctx, i, f"'{name}': repeat {k} of '{base}' is out of range: {have}",
                          "index repeats from 0, or from the end with -1 (the last)", "inputs")
            return [group[k]]
        if not m and name in ctx.names:
            return [ctx.names[name]]
        if ctx.path is not None and name in self.G and not ctx.trace:
            return [name]  # a full scope path at top level (`stem.0`)
        visible = [n for n in ctx.names if n != "prev"] + ["prev"]
        self.fail(ctx, i, f"unknown input '{name}'",
                  did_you_mean(base, visible, "names here")
                  + " (names refer to earlier entries; `name.k`, `name.-1`, `name.*` address repeats)", "inputs")

    def lower_entry(self, e: EntryBase, i: int, ctx: Context, prev: str) -> str:
        # A condition that does not look at the input is decided first, so a skipped entry
        # may name inputs that were skipped too.
        input_free = not (is_expression(e.when) and {"in", "in_h", "in_w"} & set(variables(e.when)))
        if input_free and not self.resolve_value(e.when, ctx.env, ctx, i, "when"):
            return prev
        # An entry whose inputs gather its own repeats (`f.*` inside f) reads all its earlier repeats,
        # resolved again for every repeat (dense connectivity); any other repeat reads the previous one.
        own: list[str] = []
        self_ref = e.name is not None and e.inputs is not None and self.refers_to_itself(e, i, ctx)
        inputs = self.resolve_inputs(e, i, ctx, prev, own=own if self_ref else None)
        env = self.input_env(ctx.env, inputs[0])
        if not input_free and not self.resolve_value(e.when, env, ctx, i, "when"):
            return prev
        repeat = self.resolve_value(e.repeat, env, ctx, i, "repeat")
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 0:
            self.fail(ctx, i, f"repeat must be a non-negative integer, got {repeat!r}", "", "repeat")
        if repeat > MAX_REPEAT:
            self.fail(ctx, i, f"repeat {repeat:,} is more than the limit {MAX_REPEAT:,}",
                      "no network repeats one entry this often; check the number (and any depth multiplier "
                      "or variant that scales it)", "repeat")
        if not ctx.trace:
            self.top_entry = (ctx, i, repeat)  # the entry the graph's size is charged to
        type_name = self.resolve_value(e.type, env, ctx, i, "type")
        if type_name is None or type_name == "none":
            return prev
        if not isinstance(type_name, str):
            # `type: $block` with vars.block a number, list or mapping (fuzz seeds 10060, 12862)
            shown = repr(type_name)
            self.fail(ctx, i, f"type must name an op or a block, got {shown if len(shown) <= 60 else shown[:57] + '...'}",
                      "an expression in `type:` must evaluate to a name such as 'conv2d' or 'resnet_basic'", "type")
        type_name = ops.ALIASES.get(type_name, type_name)
        given = entry_params(e)
        templates = self.scope_templates(ctx)
        counts_for_drop_path = ctx.stage not in ("stem", "head", "aux") and not ctx.trace and (
            self.spec.drop_path_counts == "stage_entries" or type_name in templates)
        part = e.name
        out = prev
        for k in range(repeat):
            if k > 0:
                inputs = self.resolve_inputs(e, i, ctx, out, own=own) if self_ref else [out]
            env = self.input_env(ctx.env, inputs[0])
            # the repeat's index and count; a variable or parameter of the same name wins (specs
            # written before these existed keep their meaning)
            env = {"i": k, "n": repeat, **env}
            if counts_for_drop_path:
                env["drop_path"] = self.drop_path_at(self.block_index)
                self.block_index += 1
            params = {key: self.resolve_value(v, env, ctx, i, key) for key, v in given.items()}
            params = {**self.resolve_defaults(type_name, params, env, ctx, i), **params}
            if k > 0 and "stride" in self.param_names(type_name, templates):
                params["stride"] = 1  # only the first repeat carries the stride
            # unnamed entries are numbered after unrolling (stages.2.blocks.3); named ones keep their name
            node_part = (part if repeat == 1 else f"{part}.{k}") if e.name else str(ctx.unrolled)
            ctx.unrolled += 1
            node_id = f"{ctx.scope}.{node_part}" if ctx.scope else node_part
            if node_id in self.G or node_id in self.G.graph["scopes"]:
                self.fail(ctx, i, f"duplicate name '{node_part}' in '{ctx.scope}'", "give each entry a unique name", "name")
            if ops.is_op(type_name):
                out = self.add_op(type_name, params, inputs, node_id, ctx, i)
            elif type_name in ctx.trace:
                chain = " > ".join(ctx.trace[ctx.trace.index(type_name):] + (type_name,))
                self.fail(ctx, i, f"block '{type_name}' refers to itself ({chain})",
                          "a block cannot contain itself, directly or through other blocks", "type")
            elif type_name in templates:
                out = self.expand_block(type_name, templates, params, inputs, node_id, ctx, i, env)
            else:
                choices = sorted({*ops.OPS, *templates} - {"input"})
                self.fail(ctx, i, f"unknown type '{type_name}'", did_you_mean(type_name, choices, "types"), "type")
            own.append(out)
        if e.name:
            if e.name in ctx.defined or e.name in ("input", "prev"):
                where = "in this block" if ctx.trace else f"in {ctx.part}"
                self.fail(ctx, i, f"duplicate name '{e.name}' {where}", "give each entry its own name", "name")
            ctx.names[e.name] = out
            ctx.repeats[e.name] = own
            ctx.defined.add(e.name)
        return out

    def refers_to_itself(self, e: EntryBase, i: int, ctx: Context) -> bool:
        """True if the entry's inputs name its own repeats (`f.*`, `f.0` inside f); a bare `f` still
        means an earlier entry of that name (a later part may reuse a name)."""
        raw = e.inputs if isinstance(e.inputs, list) else [e.inputs]
        for item in raw:
            value = self.resolve_value(item, ctx.env, ctx, i, "inputs")
            for name in value if isinstance(value, list) else [value]:
                m = REPEAT_REF.match(name) if isinstance(name, str) else None
                if m and m.group(1) == e.name:
                    return True
        return False

    def param_names(self, type_name: str, templates: dict) -> set[str]:
        if ops.is_op(type_name):
            return set(ops.get_op(type_name).Params.model_fields)
        return set(templates[type_name].params)

    def scope_templates(self, ctx: Context) -> dict:
        """The block types visible here: inside a library block the library's own (a spec's block of
        the same name does not change it), elsewhere the spec's blocks over the library's."""
        return library() if ctx.in_library else self.templates

    def drop_path_at(self, index: int) -> float:
        """Stochastic depth of the index-th counted stage entry (docs/spec-language.md): rate * i / n,
        or rate * i / (n - 1) (torchvision's ConvNeXt: the last block gets the full rate)."""
        total = self.total_blocks - (1 if self.spec.drop_path_spread == "index/(total-1)" else 0)
        return self.spec.drop_path_rate * index / max(total, 1)

    def resolve_defaults(self, type_name: str, written: dict, env: dict, ctx: Context, i: int) -> dict:
        """The spec's `defaults:` for this entry's type, for the parameters it does not write, evaluated
        in the entry's scope (its `$in`, block parameters, `$i`); errors point at the defaults line."""
        defaults = self.spec.defaults.get(type_name)
        if not defaults:
            return {}
        out = {}
        for key, value in defaults.items():
            if key in written:
                continue
            try:
                # the entry's scope over the spec's vars: `momentum: $bn_m` reaches entries inside blocks
                out[key] = substitute(value, {**self.global_env, **env})
            except ExprError as exc:
                at = self.loc(ctx, i)
                where = self.spec.locs.loc(("defaults", type_name, key))
                raise SpecError(Issue(where, f"{key}: {exc} (applied to the entry at {at.file}:{at.line}:{at.col} "
                                             f"{at.path})", exc.hint)) from None
            self.from_defaults.add((type_name, key))
        return out

    def defaults_loc(self, type_name: str, key: str) -> Optional[SourceLoc]:
        """Where a parameter came from when `defaults:` supplied it (for errors in its value)."""
        if (type_name, key) in self.from_defaults and key in self.spec.defaults.get(type_name, {}):
            return self.spec.locs.loc(("defaults", type_name, key))
        return None

    # ------------------------------------------------------------------ ops
    def add_op(self, type_name: str, params: dict, inputs: list[str], node_id: str, ctx: Context, i: int) -> str:
        if len(self.G) >= MAX_GRAPH_NODES:
            top_ctx, top_i, top_repeat = self.top_entry
            self.fail(top_ctx, top_i, f"the network grows past {MAX_GRAPH_NODES:,} primitive ops while lowering this "
                      f"entry (repeat {top_repeat:,})",
                      "the largest networks have a few thousand ops; check repeats and depth multipliers",
                      "repeat" if top_repeat > 1 else None)
        op = ops.get_op(type_name)
        try:
            p = op.Params.model_validate(params)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(x) for x in err["loc"])
            got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
            hint = did_you_mean(key, list(op.Params.model_fields), "parameters") if err["type"] == "extra_forbidden" else ""
            self.fail_param(ctx, i, op.name, key, f"{op.name} '{node_id}': {key}: {err['msg']}{got}", hint)
        if op.arity is not None and len(inputs) != op.arity:
            self.fail(ctx, i, f"{op.name} takes {op.arity} input(s), got {len(inputs)}", "check `inputs:`", "inputs")
        if op.arity is None and len(inputs) < op.min_inputs:
            self.fail(ctx, i, f"{op.name} needs {op.min_inputs} or more inputs, got {len(inputs)}",
                      "name them in `inputs:`", "inputs")
        in_shapes = [self.shape(n) for n in inputs]
        try:
            inf = infer_op(op, p, in_shapes)
        except ops.ShapeError as exc:
            self.fail(ctx, i, f"{op.name} '{node_id}': {exc}", exc.hint)
        self.G.add_node(
            node_id, op=op.name, kind=op.kind.value, attrs=inf.attrs, shape=inf.shape, inputs=list(inputs),
            in_shapes=in_shapes, weights=inf.weights, buffers=inf.buffers, scope=ctx.scope, blocks=ctx.blocks,
            stage=ctx.stage, part=ctx.part, aux=ctx.aux, loc=self.loc(ctx, i), template=ctx.trace,
        )
        for n in inputs:
            self.G.add_edge(n, node_id, shape=self.shape(n))
        return node_id

    # ------------------------------------------------------------------ blocks
    def expand_block(self, type_name: str, templates: dict, params: dict, inputs: list[str], scope: str,
                     ctx: Context, i: int, env: dict) -> str:
        tpl: BlockTemplate = templates[type_name]
        bound, problems = tpl.bind(params)
        if problems:
            key, msg, hint = problems[0]
            self.fail(ctx, i, f"{msg} of block '{type_name}'", hint)
        for key, decl in tpl.params.items():
            if decl.type != "any" and not is_expression(bound[key]):
                try:
                    bound[key] = _adapter(decl.type).validate_python(bound[key])
                except ValidationError as exc:
                    self.fail_param(ctx, i, type_name, key,
                                    f"{type_name}.{key}: {exc.errors()[0]['msg']} (got {bound[key]!r})", decl.doc)
        benv = {"num_classes": env["num_classes"], "drop_path": env.get("drop_path", 0.0),
                **{k: v for k, v in env.items() if k in ("in", "in_h", "in_w")}, **bound}
        for var, expr in tpl.vars.items():
            try:
                benv[var] = substitute(expr, benv)
            except ExprError as exc:
                self.fail(ctx, i, f"block '{type_name}' var '{var}': {exc}", exc.hint)
        self.G.graph["scopes"][scope] = {
            "kind": "block", "type": type_name, "name": scope.rsplit(".", 1)[-1], "params": bound,
            "stage": ctx.stage, "aux": ctx.aux, "loc": self.loc(ctx, i), "parent": ctx.scope,
        }
        names = {"input": inputs[0], **{f"input{j}": n for j, n in enumerate(inputs)}}
        inner = Context(scope=scope, names=names, env=benv, stage=ctx.stage, aux=ctx.aux, path=None,
                        repeats={"input": list(inputs)},  # `input.*`: every input of the block
                        call_loc=self.loc(ctx, i), trace=ctx.trace + (type_name,), blocks=ctx.blocks + (scope,),
                        part=ctx.part,
                        in_library=ctx.in_library or type_name not in self.spec.blocks,
                        tpl_path=("blocks", type_name, "body") if type_name in self.spec.blocks
                        and not ctx.in_library else None)
        out = self.lower_entries(tpl.body, inner, inputs[0])
        if tpl.output:
            if tpl.output not in names:
                self.fail(ctx, i, f"block '{type_name}' output '{tpl.output}' is not an entry of its body")
            out = names[tpl.output]
        return out

    # ------------------------------------------------------------------ network
    def add_scope(self, scope: str, kind: str, **info):
        self.G.graph["scopes"][scope] = {"kind": kind, "type": kind, "name": scope, "params": {}, **info}

    def run(self) -> nx.DiGraph:
        spec, G = self.spec, self.G
        c, (h, w) = spec.input.channels, spec.input.size
        G.graph.update(name=spec.name, input_shape=(c, h, w), num_classes=spec.num_classes, reference=spec.reference,
                       train=spec.train.model_dump(mode="json") if spec.train else None, outputs={}, scopes={}, stages=[])
        G.add_node("input", op="input", kind="input", attrs={}, shape=(c, h, w), inputs=[], in_shapes=[], weights={},
                   buffers={}, scope="", blocks=(), stage="stem", part=None, aux=False,
                   loc=spec.locs.loc(("input",)), template=())
        env = global_env(spec.num_classes, spec.vars, spec.locs)
        self.global_env = env
        names = {"input": "input"}
        repeats: dict = {}  # shared by stem, stages and head, like `names`
        self._stages = None
        self.total_blocks = self.count_stage_blocks(env)
        prev = "input"
        self.add_scope("stem", "stem")
        prev = self.lower_entries(spec.stem, Context("stem", names, env, "stem", path=("stem",), part="stem",
                                                     repeats=repeats), prev)
        for k, (si, name, stage, stage_env) in enumerate(self.stage_instances(env)):
            scope = f"stages.{name or k}"
            if scope in G.graph["scopes"]:
                raise SpecError(Issue(spec.locs.loc(("stages", si, "name")), f"duplicate stage name '{name}'",
                                      "stage names (derived ones are the prefix numbered from 1) must be unique"))
            self.add_scope(scope, "stage", stage=k, label=name or f"stage {k}", loc=spec.locs.loc(("stages", si)))
            G.graph["stages"].append(scope)
            prev = self.lower_entries(stage.blocks, Context(f"{scope}.blocks", names, stage_env, k,
                                                            path=("stages", si, "blocks"), part=scope,
                                                            repeats=repeats), prev)
        self.add_scope("head", "head")
        prev = self.lower_entries(spec.head, Context("head", names, env, "head", path=("head",), part="head",
                                                     repeats=repeats), prev)
        if prev == "input":  # empty stages, repeat: 0 or `when: false` everywhere: nothing to analyse or build
            raise SpecError(Issue(spec.locs.loc(("stages",)) if spec.stages else spec.locs.loc(()),
                                  "the network has no ops (its entries are all empty, skipped or repeated 0 times)",
                                  "give at least one layer in stem, stages or head"))
        G.graph["outputs"]["logits"] = prev
        if self.aux:
            for ai, head in enumerate(spec.aux_heads):
                loc = spec.locs.loc(("aux_heads", ai, "at"))
                start = names.get(head.at) or (head.at if head.at in G else None) or one_repeat(head.at, repeats)
                if start is None:
                    raise SpecError(Issue(loc, f"aux head '{head.name}' is attached at unknown point '{head.at}'",
                                          did_you_mean(head.at, [n for n in names if n != "prev"], "names")))
                scope = head.scope or f"aux.{head.name}"
                taken = scope in G.graph["scopes"] or any(n == scope or n.startswith(scope + ".") for n in G)
                if taken:
                    raise SpecError(Issue(spec.locs.loc(("aux_heads", ai, "scope" if head.scope else "name")),
                                          f"aux head '{head.name}': scope '{scope}' is already used",
                                          "choose a scope no other entry uses"))
                self.add_scope(scope, "aux", aux=True, loc=loc, label=f"aux head {head.name}")
                out = self.lower_entries(head.layers, Context(scope, dict(names), env, "aux", aux=True,
                                                              path=("aux_heads", ai, "layers"), part=scope,
                                                              repeats=dict(repeats)), start)
                G.graph["outputs"][head.name] = out
        outputs = set(G.graph["outputs"].values())
        # computed but never read: usually a forgotten `inputs:` (reported as a warning, not an error)
        G.graph["unused"] = [n for n in G if G.out_degree(n) == 0 and n not in outputs and n != "input"]
        return G

    def stage_instances(self, env: dict) -> list:
        if self._stages is None:
            self._stages = stage_instances(self.spec, env)
        return self._stages

    def count_stage_blocks(self, env: dict) -> int:
        """How many stage entries `drop_path_rate` spreads over: every stage entry, repeats unrolled
        (`drop_path_counts: stage_entries`), or those whose type is a block (`blocks`)."""
        total = 0
        for _, _, stage, stage_env in self.stage_instances(env):
            for e in stage.blocks:
                if self.spec.drop_path_counts == "blocks" and not is_expression(e.type) \
                        and ops.ALIASES.get(e.type, e.type) not in self.templates:
                    continue
                try:
                    n = substitute(e.repeat, stage_env) if is_expression(e.repeat) else e.repeat
                except ExprError:
                    n = 1  # needs $in: counted as one, reported properly when lowered
                total += n if isinstance(n, int) else 1
        return total


def _stage_vars(spec: Spec, si: int, stage, env: dict) -> dict:
    """A stage's `vars`, evaluated in order over `env`."""
    env = dict(env)
    for k, v in stage.vars.items():
        try:
            env[k] = substitute(v, env)
        except ExprError as exc:
            raise SpecError(Issue(spec.locs.loc(("stages", si, "vars", k)), str(exc), exc.hint)) from None
    return env


def stage_instances(spec: Spec, env: dict) -> list[tuple[int, Optional[str], Any, dict]]:
    """The network's stages in order: (index in the spec's `stages`, name, stage, its variables). A
    derived stage (`for` / `in`) gives one instance per item of its list, named `<name>1`, `<name>2`, ..."""
    out = []
    for si, stage in enumerate(spec.stages):
        if stage.for_ is None:
            out.append((si, stage.name, stage, _stage_vars(spec, si, stage, env)))
            continue
        where = spec.locs.loc(("stages", si, "in"))
        try:
            items = substitute(stage.in_, env)
        except ExprError as exc:
            raise SpecError(Issue(where, f"in: {exc}", exc.hint)) from None
        if not isinstance(items, list):
            raise SpecError(Issue(where, f"in: derived stages need a list, got {items!r}"[:200],
                                  "for example in: runs($block_widths) (a list of [width, depth] pairs)"))
        if len(items) > MAX_REPEAT:
            raise SpecError(Issue(where, f"in: {len(items):,} derived stages (at most {MAX_REPEAT:,})"))
        names = [stage.for_] if isinstance(stage.for_, str) else stage.for_
        for k, item in enumerate(items):
            values = [item] if isinstance(stage.for_, str) else item
            if not isinstance(values, list) or len(values) != len(names):
                raise SpecError(Issue(where, f"in: item {k} is {item!r}, which does not unpack into "
                                             f"{', '.join(names)}"[:300],
                                      f"each item must be a list of {len(names)} values"))
            stage_env = {**env, **dict(zip(names, values)), "stage_index": k}
            name = f"{stage.name}{k + 1}" if stage.name else None
            out.append((si, name, stage, _stage_vars(spec, si, stage, stage_env)))
    return out


def one_repeat(ref: str, repeats: dict) -> Optional[str]:
    """The node of `f.k` / `f.-k` / 'f[-k]' among the named repeats, or None."""
    m = REPEAT_REF.match(ref)
    group = repeats.get(m.group(1)) if m and m.group(4) is None else None
    if not group:
        return None
    k = int(m.group(2) if m.group(2) is not None else m.group(3))
    return group[k] if -len(group) <= k < len(group) else None


def global_env(num_classes: int, variables: dict, locs) -> dict:
    """The variables every top-level entry sees: `$num_classes` and the spec's `vars` (evaluated)."""
    env = {"num_classes": num_classes, **variables}
    for k, v in variables.items():  # in order: a var sees the values of the vars before it
        try:
            env[k] = substitute(v, env)
        except ExprError as exc:
            raise SpecError(Issue(locs.loc(("vars", k)), str(exc), exc.hint)) from None
    return env


def lower(spec: Spec, *, aux: bool = True) -> nx.DiGraph:
    """Lower a validated spec to the graph IR. `aux=False` leaves out auxiliary heads."""
    return Lowerer(spec, aux=aux).run()
