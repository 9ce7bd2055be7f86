"""`netspec eject`: the graph IR → one standalone, readable PyTorch source file.

Pure text generation (no torch here; nothing generated is executed by netspec). The file mirrors the
compiled module (`netspec.backends.pytorch`) exactly: the same module tree, so the same `state_dict()`
keys in the same order, and the same forward order, so dropout and stochastic depth draw their random
numbers in the same order. What makes it readable:

* every block scope becomes an instance of one `nn.Module` class per block type; instances whose
  structure differs (an MBConv with or without its expansion) get one class each, named after the
  parts only they have; the values that differ between instances (channels, stride, ...) become
  constructor arguments, merged where they are always equal;
* a run of modules each feeding only the next (a stage's blocks, a head) is an `nn.Sequential` and
  is called once; other groups are `nn.ModuleList` / `nn.ModuleDict`;
* parameter-free ops directly inside a block (concat, add, mul, chunk, flatten, channel shuffle) are
  written inline in the forward (`Op.inline`), every other op by its constructor (`Op.source`);
* the few layers torch.nn lacks are small classes written into the file only when used.
"""
from __future__ import annotations

import ast
import re
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import networkx as nx

from . import ops
from .eject_code import Call, Container, Sym, _identifier, _slots, _values, camel, literal, render
from .escape import py_text
from .errors import Issue, SourceLoc, SpecError
from .optimize import evaluation_order

RESERVED = {"self", "torch", "nn", "F", "x", "List", "Tuple", "Union", "Optional", "math", "aux_outputs"}


# --------------------------------------------------------------------------- the generator

class Ejector:
    def __init__(self, G: nx.DiGraph):
        self.G = G
        outputs = list(G.graph["outputs"].values())
        self.outputs = outputs
        self.needed: set[str] = set()
        for o in outputs:
            self.needed |= nx.ancestors(G, o) | {o}
        self.order = evaluation_order(G, self.needed)
        self.position = {n: i for i, n in enumerate(self.order)}
        self.scopes = G.graph["scopes"]
        self.blocks = {s for s, info in self.scopes.items() if info["kind"] == "block"
                       and any(s in G.nodes[n]["blocks"] for n in G.nodes if n != "input")}
        # the module tree, children in registration order (as backends.pytorch._place builds it)
        self.children: dict[str, list[str]] = defaultdict(list)
        for n in G.nodes:
            if n == "input":
                continue
            parts = n.split(".")
            for i in range(len(parts)):
                parent, child = ".".join(parts[:i]), ".".join(parts[:i + 1])
                if child not in self.children[parent]:
                    self.children[parent].append(child)
        for n in G.nodes:  # registered on the block before its submodules (backends.pytorch._move_first)
            if n != "input" and ops.get_op(G.nodes[n]["op"]).registers_first:
                parent = n.rpartition(".")[0]
                self.children[parent].remove(n)
                self.children[parent].insert(0, n)
        self.classifiers = self._classifier_nodes()
        self.exprs: dict[str, Any] = {}       # block scope -> its call expression
        self.classes: list[str] = []          # class sources, in definition order
        self.class_names: set[str] = set()
        self._io: dict[str, tuple[list[str], str]] = {}
        self._chain: dict[str, bool] = {}

    def fail(self, scope: str, message: str) -> None:
        loc = self.scopes.get(scope, {}).get("loc") or SourceLoc(scope or "spec")
        raise SpecError(Issue(loc, f"eject: {message}", "netspec build still compiles this spec; "
                                                       "please report the spec to netspec"))

    # ---------------------------------------------------------------- structure
    def _classifier_nodes(self) -> set[str]:
        """The ops whose outputs are the classes: from each output back through weightless ops."""
        found = set()
        for o in self.outputs:
            n = o
            while not self.G.nodes[n]["weights"] and len(self.G.nodes[n]["inputs"]) == 1:
                n = self.G.nodes[n]["inputs"][0]
            found.add(n)
        return found

    def is_op(self, path: str) -> bool:
        return path in self.G and path != "input"

    def io(self, path: str) -> tuple[list[str], str]:
        """(external inputs in order of first use, output node) of an op, block or container."""
        if path in self._io:
            return self._io[path]
        if self.is_op(path):
            result = (list(self.G.nodes[path]["inputs"]), path)
        else:
            inside = [n for n in self.G.nodes if n.startswith(path + ".")]
            members = set(inside)
            ins: list[str] = []
            for n in inside:
                for i in self.G.nodes[n]["inputs"]:
                    if i not in members and i not in ins:
                        ins.append(i)
            outs = [n for n in inside if n in self.needed and
                    (n in self.outputs or any(s not in members for s in self.G.successors(n)))]
            if len(outs) > 1:
                self.fail(path, f"'{path}' has more than one output read outside it ({', '.join(outs[:3])})")
            result = (ins, outs[0] if outs else inside[-1])
        self._io[path] = result
        return result

    def unit(self, path: str) -> bool:
        """An op, a block, or a container that is a chain (all three are called as one module)."""
        return self.is_op(path) or path in self.blocks or self.chain(path)

    def chain(self, path: str) -> bool:
        """A container whose children each read only the previous one's output: an nn.Sequential."""
        if path in self._chain:
            return self._chain[path]
        kids = self.children[path]
        ok = bool(kids) and not self.is_op(path) and path not in self.blocks and path != ""
        prev_out = None
        for k, kid in enumerate(kids if ok else []):
            if not (self.is_op(kid) or kid in self.blocks or self.chain(kid)):
                ok = False
                break
            ins, out = self.io(kid)
            if len(ins) != 1 or (k > 0 and ins != [prev_out]) or out not in self.needed:
                ok = False
                break
            if k < len(kids) - 1:
                nxt = kids[k + 1]
                if out in self.outputs or any(not s.startswith(nxt + ".") and s != nxt
                                              for s in self.G.successors(out)):
                    ok = False
                    break
            prev_out = out
        self._chain[path] = ok
        return ok

    def container_kind(self, path: str) -> str:
        keys = [c.rsplit(".", 1)[-1] for c in self.children[path]]
        if self.chain(path):
            return "Sequential"
        return "ModuleList" if keys == [str(i) for i in range(len(keys))] else "ModuleDict"

    # ---------------------------------------------------------------- constructors
    def op_expr(self, n: str) -> Call:
        d = self.G.nodes[n]
        src = ops.get_op(d["op"]).source(d["attrs"], d["in_shapes"], d["shape"])
        args = []
        for i, (name, value, default) in enumerate(src.args):
            if n in self.classifiers and name in ("out_channels", "out_features") \
                    and value == self.G.graph["num_classes"]:
                value = Sym("num_classes")
            args.append((name, value, default, i < src.positional))
        return Call(src.call, args)

    def expr(self, path: str):
        if self.is_op(path):
            return self.op_expr(path)
        if path in self.blocks:
            return self.exprs[path]
        return Container(self.container_kind(path),
                         [(c.rsplit(".", 1)[-1], self.expr(c)) for c in self.children[path]])

    def inline_op(self, path: str, scope: str) -> bool:
        """A parameter-free op directly in a block, written in the forward instead of as a module."""
        if not self.is_op(path) or path.rsplit(".", 1)[0] != scope or scope not in self.blocks:
            return False
        d = self.G.nodes[path]
        key = path.rsplit(".", 1)[-1]
        return _identifier(key) and ops.get_op(d["op"]).inline(d["attrs"], ["x"] * len(d["inputs"])) is not None

    # ---------------------------------------------------------------- forwards
    def access(self, path: str, scope: str) -> str:
        rel = path[len(scope) + 1:] if scope else path
        text, parent = "self", scope
        for part in rel.split("."):
            child = f"{parent}.{part}" if parent else part
            if _identifier(part):
                text += f".{part}"
            elif parent in self.blocks or parent == "" or self.container_kind(parent) == "ModuleDict":
                text = f"getattr({text}, {part!r})" if parent in self.blocks or parent == "" else f"{text}[{part!r}]"
            else:
                text += f"[{self.children[parent].index(child)}]"
            parent = child
        return text

    def statements(self, scope: str) -> list[tuple[str, list[str], str, bool]]:
        """(unit, input nodes, output node, aux) per call in the scope's forward, in evaluation order."""
        inside = [n for n in self.order if scope == "" or scope in self.G.nodes[n]["blocks"]]
        if scope and self.io(scope)[1] not in self.needed:
            # a block whose output nothing reads (fuzz seed 10561): never called, but its class still
            # needs a forward - its own nodes, in insertion (topological) order
            inside = [n for n in self.G.nodes if n != "input" and scope in self.G.nodes[n]["blocks"]]
        done, out = set(), []
        for n in inside:
            if n == "input":
                continue
            # the outermost unit below the scope (ModuleList / ModuleDict members are called one by one)
            u = next(p for p in [*reversed(self._ancestors(n, scope)), n] if self.unit(p))
            if u in done:
                continue
            done.add(u)
            ins, o = self.io(u)
            out.append((u, ins, o, bool(self.G.nodes[n]["aux"])))
        return out

    def _ancestors(self, path: str, scope: str) -> list[str]:
        """Containers and blocks between scope (excluded) and path, innermost first."""
        parts = path.split(".")
        start = len(scope.split(".")) if scope else 0
        return [".".join(parts[:i]) for i in range(len(parts) - 1, start, -1)]

    def forward(self, scope: str, params: list[str]) -> list[str]:
        stmts = self.statements(scope)
        env: dict[str, str] = {}
        if scope:
            ins, out = self.io(scope)
            for node, p in zip(ins, params):
                env[node] = p
        else:
            env["input"] = "x"
            out = None
        last_use: dict[str, int] = {}
        for i, (_, ins, _, _) in enumerate(stmts):
            for node in ins:
                last_use[node] = i
        final = len(stmts)
        for o in self.outputs if not scope else [out]:
            last_use[o] = final
        holder_x = {v: k for k, v in env.items()}.get("x")
        taken = set(RESERVED) | set(params)
        lines: list[str] = []
        aux_block: list[str] = []
        aux_count = 0
        aux_index: dict[str, int] = {}

        def name_for(u: str, node: str, aux: bool) -> str:
            nonlocal holder_x
            if not aux and (holder_x is None or last_use.get(holder_x, -1) <= i):
                holder_x = node
                return "x"
            key = u.rsplit(".", 1)[-1]
            if not _identifier(key):
                key = self.scopes[u]["type"] if u in self.blocks else (
                    self.G.nodes[u]["op"] if self.is_op(u) else "_".join(u.split(".")[-2:]))
            key = re.sub(r"\W", "_", key)
            if not _identifier(key):
                key = "y_" + key
            name, k = key, 2
            while name in taken:
                name, k = f"{key}_{k}", k + 1
            taken.add(name)
            return name

        for i, (u, ins, o, aux) in enumerate(stmts):
            aux = aux and not scope  # an aux head's own blocks run whole; the top level guards them
            args = [env.get(n, "xs") for n in ins]
            if scope and self.variadic(scope) and ins == self.io(scope)[0]:
                rhs = "torch.cat(xs, 1)"  # the block's list of inputs, whatever its length
            elif self.inline_op(u, scope):
                d = self.G.nodes[u]
                rhs = ops.get_op(d["op"]).inline(d["attrs"], args)
            elif (self.is_op(u) and ops.get_op(self.G.nodes[u]["op"]).arity is None) or \
                    (u in self.blocks and self.variadic(u)):
                rhs = f"{self.access(u, scope)}([{', '.join(args)}])"
            else:
                rhs = f"{self.access(u, scope)}({', '.join(args)})"
            var = name_for(u, o, aux)
            env[o] = var
            line = f"{var} = {rhs}"
            if aux:
                aux_block.append(line)
                if o in self.outputs:
                    aux_block.append(f"aux_outputs.append({var})")
                    aux_index[o] = aux_count
                    aux_count += 1
            else:
                if aux_block:
                    lines += ["if self.training:"] + [f"    {a}" for a in aux_block]
                    aux_block = []
                lines.append(line)
        if aux_block:
            lines += ["if self.training:"] + [f"    {a}" for a in aux_block]
        if scope:
            lines.append(f"return {env[out]}")
            return lines
        names = list(self.G.graph["outputs"])
        logits = env[self.G.graph["outputs"]["logits"]]
        if len(names) > 1:
            lines.insert(0, "aux_outputs: List[torch.Tensor] = []")
            extra = ", ".join(f"aux_outputs[{aux_index[self.G.graph['outputs'][k]]}]" for k in names[1:])
            lines += ["if self.training:", f"    return {logits}, {extra}  # logits, then the aux heads' logits"]
        lines.append(f"return {logits}")
        return lines

    # ---------------------------------------------------------------- classes
    def variadic(self, scope: str) -> bool:
        """A block whose inputs are all read by one concat, in order (a dense layer): its forward
        takes a list, so one class serves any number of inputs."""
        ins = self.io(scope)[0]
        if len(ins) < 2:
            return False
        readers = {n for n in self.G.nodes if n.startswith(scope + ".") and set(self.G.nodes[n]["inputs"]) & set(ins)}
        if len(readers) != 1:
            return False
        n = readers.pop()
        return (self.G.nodes[n]["op"] == "concat" and self.G.nodes[n]["inputs"] == ins
                and self.inline_op(n, scope))

    def input_names(self, scope: str) -> list[str]:
        if self.variadic(scope):
            return ["xs"]
        n_in = len(self.io(scope)[0])
        return ["x"] if n_in == 1 else [f"x{i}" for i in range(n_in)]

    def class_body(self, scope: str) -> tuple[list, list[str], int]:
        """(children (key, expression), forward lines, number of inputs) of a block scope."""
        kids = [(c.rsplit(".", 1)[-1], self.expr(c)) for c in self.children[scope] if not self.inline_op(c, scope)]
        n_in = len(self.io(scope)[0])
        params = self.input_names(scope)
        return kids, self.forward(scope, params), n_in

    def build_blocks(self) -> None:
        # by height (blocks nested below), so a class's nested classes exist first and every use of
        # one structure (same height) is grouped together, wherever it is nested
        height: dict[str, int] = {}
        for s in sorted(self.blocks, key=lambda s: -s.count(".")):
            height[s] = 1 + max((height[b] for b in self.blocks if b.startswith(s + ".")), default=-1)
        for level in sorted(set(height.values())):
            groups: dict[tuple, list] = {}
            for s in sorted((s for s in self.blocks if height[s] == level), key=self._first_node):
                kids, fwd, n_in = self.class_body(s)
                slots: list = []
                skeleton = _slots(Container("Block", kids), (), slots)
                key = (self.scopes[s]["type"], skeleton, tuple(fwd))
                groups.setdefault(key, []).append((s, kids, slots))
            by_type: dict[str, list] = defaultdict(list)
            for key in groups:
                by_type[key[0]].append(key)
            for type_name, keys in by_type.items():
                common = set.intersection(*(set(self._kid_keys(s)) for s in self.blocks
                                            if self.scopes[s]["type"] == type_name))
                for key in keys:
                    extra = [k for k in self._kid_keys(groups[key][0][0]) if k not in common]
                    self.define_class(self._class_name(type_name, extra), key, groups[key])

    def _first_node(self, scope: str) -> int:
        return min(i for i, n in enumerate(self.G.nodes) if n.startswith(scope + "."))

    def _kid_keys(self, scope: str) -> list[str]:
        """The keys of a block's direct parts, inline ops included (they name a variant: `add`)."""
        return [c.rsplit(".", 1)[-1] for c in self.children[scope]]

    def _class_name(self, type_name: str, extra: list[str]) -> str:
        base = camel(type_name) + ("With" + "".join(camel(k) for k in extra) if extra else "")
        name, k = base, 2
        while name in self.class_names or name in HELPERS:
            name, k = f"{base}{k}", k + 1
        self.class_names.add(name)
        return name

    def define_class(self, name: str, key: tuple, instances: list) -> None:
        type_name, _, fwd = key
        slots = instances[0][2]
        values = []
        for _, kids, _ in instances:
            vals: list = []
            _values(Container("Block", kids), vals)
            values.append(vals)
        columns = list(zip(*values)) if values and values[0] else [() for _ in slots]
        # constructor parameters: the slots whose value varies (or is a name), merged when always equal
        param_of: dict[int, str] = {}
        params: list[tuple[str, tuple]] = []
        by_column: dict[str, str] = {}
        names_used: dict[str, int] = defaultdict(int)
        for j, (path, argname, default, _) in enumerate(slots):
            col = columns[j]
            if all(not isinstance(v, Sym) for v in col) and len({repr(v) for v in col}) == 1:
                continue
            sig = repr(col)
            if sig in by_column:
                param_of[j] = by_column[sig]
                continue
            params.append((argname, col, path))
            names_used[argname] += 1
            by_column[sig] = f"@{len(params) - 1}"
            param_of[j] = by_column[sig]
        final_names = []
        # channel counts are named after what they are: the block's input or output channels, else
        # after the part they size (`expand_out_channels`), so a reader never mistakes one for another
        in_ch = tuple(self.G.nodes[self.io(s)[0][0]]["shape"][0] for s, _, _ in instances)
        out_ch = tuple(self.G.nodes[self.io(s)[1]]["shape"][0] for s, _, _ in instances)
        for argname, col, path in params:
            channels = "channels" in argname or "features" in argname
            if all(isinstance(v, Sym) for v in col) and len({v for v in col}) == 1:
                nm = col[0].name
            elif channels and col == in_ch:
                nm = "in_channels"
            elif channels and col == out_ch:
                nm = "out_channels"
            elif channels or names_used[argname] > 1:
                nm = "_".join([*[p for p in path if _identifier(p)], argname])
            else:
                nm = argname
            base, k = nm, 2
            while nm in final_names or nm in RESERVED:
                nm, k = f"{base}_{k}", k + 1
            final_names.append(nm)
        texts = []
        for j, (path, argname, default, positional) in enumerate(slots):
            if j in param_of:
                texts.append(final_names[int(param_of[j][1:])])
            else:
                v = columns[j][0]
                texts.append(None if (not positional and default is not ops.REQUIRED and v == default
                                      and type(v) is type(default)) else literal(v))
        first = instances[0][0]
        args = ["xs: List[torch.Tensor]"] if self.variadic(first) else \
            [f"{p}: torch.Tensor" for p in self.input_names(first)]
        used_by = [s for s, _, _ in instances]
        doc = py_text(f"Block '{type_name}'" + (f" ({len(used_by)} uses: {used_by[0]}, ...)" if len(used_by) > 1
                                                 else f" ({used_by[0]})"))
        lines = [f"class {name}(nn.Module):", f'    """{doc}."""', "",
                 f"    def __init__(self{''.join(', ' + p for p in final_names)}):",
                 "        super().__init__()"]
        kids = instances[0][1]
        for k, e in kids:
            src = render(e, texts, 8)
            lines.append(f"        self.{k} = {src}" if _identifier(k) else f"        self.add_module({k!r}, {src})")
        lines += ["", f"    def forward(self, {', '.join(args)}) -> torch.Tensor:"]
        lines += [f"        {line}" for line in fwd]
        self.classes.append("\n".join(lines))
        for i, (s, _, _) in enumerate(instances):
            call_args = [(nm, columns[self._first_slot(param_of, pi)][i], ops.REQUIRED, False)
                         for pi, nm in enumerate(final_names)]
            self.exprs[s] = Call(name, call_args)

    @staticmethod
    def _first_slot(param_of: dict, pi: int) -> int:
        return min(j for j, p in param_of.items() if p == f"@{pi}")

    def top_class(self, name: str) -> str:
        kids = [(c, self.expr(c)) for c in self.children[""]]
        lines = [f"class {name}(nn.Module):", f'    """{py_text(self.G.graph["name"])}: the whole network."""', "",
                 f"    def __init__(self, num_classes: int = {self.G.graph['num_classes']}):",
                 "        super().__init__()"]
        for k, e in kids:
            slots: list = []
            _slots(e, (), slots)
            vals: list = []
            _values(e, vals)
            texts = [None if (not pos and d is not ops.REQUIRED and v == d and type(v) is type(d)) else literal(v)
                     for (_, _, d, pos), v in zip(slots, vals)]
            src = render(e, texts, 8)
            lines.append(f"        self.{k} = {src}" if _identifier(k) else f"        self.add_module({k!r}, {src})")
        outs = list(self.G.graph["outputs"])
        ret = "torch.Tensor" if len(outs) == 1 else \
            f"Union[torch.Tensor, Tuple[{', '.join(['torch.Tensor'] * len(outs))}]]"
        lines += ["", f"    def forward(self, x: torch.Tensor) -> {ret}:"]
        lines += [f"        {line}" for line in self.forward("", ["x"])]
        return "\n".join(lines)


# --------------------------------------------------------------------------- layers torch.nn lacks

#: `backends/torch_layers.py` definitions that are not layers an ejected file writes: the build's
#: conv factory and the no-grad in-place batch norm twin (an ejected file runs plain `nn.BatchNorm2d`).
NOT_EJECTED = frozenset({"conv2d", "BatchNormInPlace"})


def layer_sources() -> dict[str, str]:
    """{name: source text} of each layer class (and function) in `backends/torch_layers.py`, in file
    order: the very definitions the compiled module runs, so there is one definition of each layer.
    Read as text and parsed with `ast`, never imported: eject stays torch-free."""
    path = Path(__file__).with_name("backends") / "torch_layers.py"
    text = path.read_text(encoding="utf-8")
    return {node.name: ast.get_source_segment(text, node) for node in ast.parse(text).body
            if isinstance(node, (ast.ClassDef, ast.FunctionDef))
            and not node.name.startswith("_") and node.name not in NOT_EJECTED}


HELPERS = layer_sources()


def eject(G: nx.DiGraph, *, version: str, source: str = "") -> str:
    """The Python source of a standalone module equivalent to `netspec.compile(G)`."""
    e = Ejector(G)
    e.build_blocks()
    top_name = camel(G.graph["name"])
    while top_name in e.class_names or top_name in HELPERS:
        top_name += "Net"
    top = e.top_class(top_name)
    body = "\n\n\n".join(e.classes + [top])
    changed = True
    wanted: set[str] = set()
    while changed:  # helpers may use helpers (ChannelShuffle -> channel_shuffle)
        changed = False
        text = body + "".join(HELPERS[h] for h in wanted)
        for h in HELPERS:
            if h not in wanted and re.search(rf"\b{h}\(", text):
                wanted.add(h)
                changed = True
    helpers = [HELPERS[h].strip() for h in HELPERS if h in wanted]
    # every free string of the spec goes through py_text: it cannot close the docstring (and
    # break_long_words=False: a wrap inside a word could split an escape from what it escapes)
    ref = textwrap.fill("Reference: " + py_text(G.graph.get("reference") or "none given"), 100,
                        break_long_words=False, break_on_hyphens=False)
    c, h, w = G.graph["input_shape"]
    header = f'''"""{py_text(G.graph["name"])}: a standalone PyTorch model.

{ref}
Input: (N, {c}, {h}, {w}); {G.graph["num_classes"]} classes by default.
Source spec: {py_text(source or "(not recorded)")}

Generated by netspec eject (netspec {py_text(version)}) — edit freely. It needs only torch; its state_dict()
keys are those of `netspec.build(...)`, so weights move between the two with load_state_dict(strict=True).
"""
'''
    imports = ["from collections import OrderedDict" if "OrderedDict(" in body else "",
               f"from typing import {'List, Optional' if 'Optional[' in ''.join(helpers) else 'List'}, Tuple, Union",
               "", "import torch",
               "import torch.nn as nn", "import torch.nn.functional as F"]
    build = f'''def build_model(num_classes: int = {G.graph["num_classes"]}) -> {top_name}:
    """The network with fresh weights; load a netspec state dict with load_state_dict(strict=True)."""
    return {top_name}(num_classes=num_classes)'''
    parts = [header + "\n".join(i for i in imports if i is not None).lstrip("\n")]
    parts += helpers + e.classes + [top, build]
    text = "\n\n\n".join(parts) + "\n"
    return format_source(text)


def format_source(text: str) -> str:
    """black's style where black is installed (optional); the generator's own layout is close to it."""
    try:
        import black
    except ImportError:
        return text
    try:
        return black.format_str(text, mode=black.Mode(line_length=100))
    except Exception:  # noqa: BLE001 - formatting is a nicety, never a failure
        return text
