"""Optimisation passes over the graph IR (pure functions; no torch).

Hand-written PyTorch models decide by hand which activations may overwrite their
input (`nn.ReLU(inplace=True)`), and inference tools fold batch norm into the
preceding convolution. netspec knows the whole graph before it builds anything,
so both are decisions over the IR:

* `inplace_nodes(G)` - which element-wise nodes may write their result into an
  input's storage while autograd records the forward (training, or eval with
  gradients on). Used by every build (`compile_graph`); outputs, gradients and
  `state_dict()` keys do not change.
* `inference_inplace_nodes(G)` - the same decision for an eval-mode forward with
  gradients off (`torch.no_grad` / `torch.inference_mode`), where no backward will
  read anything: any op with an in-place form (`Op.overwrites`: activations, add,
  mul, and batch norm with running statistics) may write into an input whose
  last reader it is. The compiled module runs this plan when grad mode is off
  (and the activation-memory analysis assumes it): about half the large
  allocations of a conv-BN-activation chain disappear.
* `inference_graph(G)` - the IR of the inference-only build
  (`netspec.compile(G, optimize=True)`): batch norm folded into the conv / linear
  before it, dropout, stochastic depth and identity removed, and parallel linear
  branches of one input summed by an add (RepVGG's 3x3 + 1x1 + identity-BN block)
  merged into one conv: compile-time structural re-parameterisation. The torch side
  (`backends/torch_optimize.py`) folds and merges the weights the same way.
"""
from __future__ import annotations

import networkx as nx

from . import ops

#: ops whose torch module has an `inplace` switch and may overwrite their (first) input
INPLACE_OPS = frozenset({"relu", "relu6", "hardswish", "hardsigmoid", "silu", "add"})

#: ops whose backward does not read their own output, so a consumer may overwrite it.
#: Anything else (sigmoid, tanh, relu: backward reads the result; views: the
#: output *is* another tensor's storage; the network input: the caller's tensor)
#: is never overwritten.
OVERWRITABLE_OUTPUT = frozenset({"conv2d", "batchnorm", "linear", "add", "concat", "mul", "maxpool", "avgpool",
                                 "adaptive_avgpool", "adaptive_maxpool", "global_avgpool"})

#: ops that are the identity at inference (eval mode)
INFERENCE_IDENTITIES = frozenset({"dropout", "drop_path", "identity"})


def _op(G: nx.DiGraph, n: str) -> str:
    return ops.get_op(G.nodes[n]["op"]).name


def _outputs(G: nx.DiGraph) -> set[str]:
    return set(G.graph["outputs"].values())


def overwritable(G: nx.DiGraph, n: str, by: str) -> bool:
    """May node `by` overwrite the tensor `n` produced? Only when `by` is its only reader (in every
    graph the module runs, training with aux heads included), no output returns it, and `n`'s own
    backward does not need it."""
    if n in _outputs(G) or list(G.successors(n)) != [by] or G.nodes[by]["inputs"].count(n) != 1:
        return False
    if _op(G, n) in INFERENCE_IDENTITIES:  # passes its input through (in eval): overwriting it
        return overwritable(G, G.nodes[n]["inputs"][0], n)  # overwrites that input
    return _op(G, n) in OVERWRITABLE_OUTPUT


def inplace_target(G: nx.DiGraph, n: str) -> int | None:
    """Index of the input node `n` may write its result into, or None (runs out of place)."""
    if _op(G, n) not in INPLACE_OPS:
        return None
    data = G.nodes[n]
    # an add sums left to right, so only its first two inputs can take the sum and keep it bit-exact
    for k, i in enumerate(data["inputs"][:2]):
        if tuple(G.nodes[i]["shape"]) == tuple(data["shape"]) and overwritable(G, i, n):
            return k
    return None


def inplace_nodes(G: nx.DiGraph) -> dict[str, int]:
    """{node: index of the input it overwrites} for every node that may run in place (autograd on)."""
    found = {}
    for n in G.nodes:
        k = inplace_target(G, n)
        if k is not None:
            found[n] = k
    return found


def _may_alias(G: nx.DiGraph, n: str) -> bool:
    """Can n's output share its input's storage? Views and eval identities do (`Op.view`); so does
    a channel shuffle with one group (torch's `.contiguous()` of an already contiguous tensor)."""
    op = ops.get_op(G.nodes[n]["op"])
    return op.view or (op.name == "channel_shuffle" and G.nodes[n]["attrs"]["groups"] in (1, G.nodes[n]["shape"][0]))


def inference_inplace_nodes(G: nx.DiGraph) -> dict[str, int]:
    """{node: index of the input it overwrites} for the eval-mode forward with gradients off.

    Walking the logits' evaluation order, each value lives in a storage: its own, or (for views,
    eval identities and in-place results) an input's. Node n may write into input k's storage when
    its op can (`Op.overwrites`, input k has the output's shape), n is the last reader of every
    value in that storage, reads it through one input only, and the storage is neither the network
    input (the caller's tensor) nor returned. Nothing later can then observe the overwrite, and the
    values computed are the same (in place or not, each element gets the same arithmetic).
    """
    logits = G.graph["outputs"]["logits"]
    order = evaluation_order(G, nx.ancestors(G, logits) | {logits})
    step = {n: i for i, n in enumerate(order)}
    end = len(order)  # the logits are read by the caller, after every node

    def last_read(v: str) -> int:
        readers = [step[s] for s in G.successors(v) if s in step]
        return max(readers + ([end] if v == logits else []), default=step[v])

    storage: dict[str, str] = {}           # value -> the node whose allocation holds it
    values: dict[str, list[str]] = {}      # storage -> the values it has held (incl. aliases)
    found: dict[str, int] = {}
    for n in order:
        data = G.nodes[n]
        if data["op"] == "input":
            storage[n] = n
            values[n] = [n]
            continue
        op = ops.get_op(data["op"])
        target = None
        for k in op.overwrites:
            if k >= len(data["inputs"]):
                continue
            i = data["inputs"][k]
            r = storage[i]
            if (r != order[0] and G.nodes[r]["op"] != "input"
                    and tuple(G.nodes[i]["shape"]) == tuple(data["shape"])
                    and sum(storage[j] == r for j in data["inputs"]) == 1
                    and all(last_read(v) <= step[n] for v in values[r])):
                target = k
                break
        if target is not None:
            found[n] = target
            storage[n] = storage[data["inputs"][target]]
        elif data["inputs"] and _may_alias(G, n):
            storage[n] = storage[data["inputs"][0]]
        else:
            storage[n] = n
            values[n] = []
        values[storage[n]].append(n)
    return found


# --------------------------------------------------------------------------- inference-only IR

def foldable_bn(G: nx.DiGraph) -> dict[str, str]:
    """{batchnorm node: the conv2d / linear node it folds into}. A BN folds when its input is a
    conv (or linear) that nothing else reads, so the conv's output is only ever seen normalised."""
    pairs = {}
    for n in G.nodes:
        if _op(G, n) != "batchnorm":
            continue
        (src,) = G.nodes[n]["inputs"]
        if (G.nodes[src]["op"] != "input" and _op(G, src) in ("conv2d", "linear")
                and list(G.successors(src)) == [n] and src not in _outputs(G)):
            pairs[n] = src
    return pairs


def inference_graph(G: nx.DiGraph) -> nx.DiGraph:
    """The IR of the inference-only module: only what computes the logits, batch norm folded into
    the conv / linear before it (the conv gains a bias, records `folded_bn` and takes over the BN's
    output name, so downstream nodes keep their inputs), and eval-mode identities removed."""
    logits = G.graph["outputs"]["logits"]
    keep = nx.ancestors(G, logits) | {logits}
    H = G.subgraph([n for n in G.nodes if n in keep]).copy()  # keeps insertion (topological) order
    H.graph = {**G.graph, "outputs": {"logits": logits}}
    H.graph["folded_bn"] = {}

    def bypass(n: str, replacement: str) -> None:
        """Remove node n; every reader of n reads `replacement` instead."""
        for s in list(H.successors(n)):
            H.nodes[s]["inputs"] = [replacement if i == n else i for i in H.nodes[s]["inputs"]]
            H.add_edge(replacement, s)
        if H.graph["outputs"]["logits"] == n:
            H.graph["outputs"]["logits"] = replacement
        H.remove_node(n)

    for bn, conv in foldable_bn(H).items():
        attrs = dict(H.nodes[conv]["attrs"])
        attrs["bias"] = True
        H.nodes[conv]["attrs"] = attrs
        H.nodes[conv]["folded_bn"] = bn
        H.graph["folded_bn"][conv] = bn
        bypass(bn, conv)
    for n in list(H.nodes):
        if _op(H, n) in INFERENCE_IDENTITIES:
            bypass(n, H.nodes[n]["inputs"][0])
    H.graph["reparameterized"] = {}
    for add, (target, branches) in parallel_branches(H).items():
        # structural re-parameterisation (Ding et al. 2021, RepVGG): every branch is linear in the
        # same input, so their sum is one conv whose kernel is the sum of the (centred) kernels
        attrs = dict(H.nodes[target]["attrs"])
        attrs["bias"] = True
        H.nodes[target]["attrs"] = attrs
        H.nodes[target]["reparam"] = [(b, H.nodes[b].get("folded_bn")) for b in branches]
        H.graph["reparameterized"][target] = [b for b in branches]
        bypass(add, target)
        for b in branches:
            if b != target:  # its BN stays counted in `folded_bn`: folded, then merged
                H.remove_node(b)
    return H


def _centred(a: dict) -> bool:
    """A conv whose window is centred on its output position: odd kernel, padding (k - 1) / 2, no dilation."""
    kh, kw = a["kernel"]
    return (kh % 2 == 1 and kw % 2 == 1 and tuple(a["dilation"]) == (1, 1)
            and tuple(a["pad"]) == ((kh - 1) // 2, (kh - 1) // 2, (kw - 1) // 2, (kw - 1) // 2))


def parallel_branches(H: nx.DiGraph) -> dict[str, tuple[str, list[str]]]:
    """{add node: (the conv the branches merge into, the branches)} for every add whose inputs are
    parallel linear branches of one input: centred convs (BN already folded in) with the same stride,
    groups and output, and at most one eval-mode batch norm of the input itself (the identity branch,
    only where the shapes allow). RepVGG's 3x3 + 1x1 + identity-BN block is one; any spec with that
    pattern is another. The merged conv has the largest kernel."""
    found = {}
    outputs = _outputs(H)
    for n in H.nodes:
        if _op(H, n) != "add":
            continue
        ins = H.nodes[n]["inputs"]
        if len(ins) < 2 or len(set(ins)) != len(ins):
            continue
        sources = set()
        convs, norms = [], []
        for b in ins:
            data = H.nodes[b]
            if b in outputs or list(H.successors(b)) != [n] or data["op"] == "input" or len(data["inputs"]) != 1:
                break
            sources.add(data["inputs"][0])
            if _op(H, b) == "conv2d" and _centred(data["attrs"]):
                convs.append(b)
            elif _op(H, b) == "batchnorm" and len(data["shape"]) == 3 and "running_mean" in data["buffers"]:
                norms.append(b)
            else:
                break
        else:
            if len(sources) != 1 or not convs or len(norms) > 1:
                continue
            first = H.nodes[convs[0]]["attrs"]
            if any((tuple(H.nodes[c]["attrs"]["stride"]), H.nodes[c]["attrs"]["groups"], H.nodes[c]["shape"])
                   != (tuple(first["stride"]), first["groups"], H.nodes[convs[0]]["shape"]) for c in convs):
                continue
            (x,) = sources
            if norms and (tuple(first["stride"]) != (1, 1) or H.nodes[x]["shape"] != H.nodes[convs[0]]["shape"]):
                continue
            target = max(convs, key=lambda c: tuple(H.nodes[c]["attrs"]["kernel"]))
            found[n] = (target, [*convs, *norms])
    return found


def describe(G: nx.DiGraph, H: nx.DiGraph) -> dict[str, int]:
    """What `inference_graph` did: counts per pass (for the CLI and docs)."""
    removed = [n for n in G.nodes if n not in H and n in nx.ancestors(G, G.graph["outputs"]["logits"])]
    return {
        "batchnorm_folded": len(H.graph.get("folded_bn", {})),
        "identities_removed": sum(1 for n in removed if _op(G, n) in INFERENCE_IDENTITIES),
        "branches_merged": len(H.graph.get("reparameterized", {})),
        "inplace": len(inference_inplace_nodes(H)),
    }


def evaluation_order(G: nx.DiGraph, needed: set[str]) -> list[str]:
    """The order the compiled module (and an ejected one) runs `needed` nodes in: insertion order (a
    topological order), except that an aux head's nodes run as soon as their inputs are ready -
    where the references evaluate them (GoogLeNet computes aux1 right after inception4a), so
    dropout in training draws its random numbers in the reference's order."""
    order: list[str] = []
    done: set[str] = set()
    waiting = [n for n in G.nodes if n in needed and G.nodes[n]["aux"]]
    for n in G.nodes:
        if n not in needed or G.nodes[n]["aux"]:
            continue
        order.append(n)
        done.add(n)
        progress = True
        while progress and waiting:
            progress = False
            for a in list(waiting):
                if all(i in done for i in G.nodes[a]["inputs"]):
                    waiting.remove(a)
                    order.append(a)
                    done.add(a)
                    progress = True
    return order + waiting  # an aux node fed by an aux node not yet emitted: insertion order
