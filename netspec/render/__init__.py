"""Diagrams: the graph IR → Graphviz DOT, at four levels of detail.

Rendering reads the IR only (never torch). It is two pure steps:

1. `collapse(G, level, expand)` maps every IR node to the *group* it is drawn
   in - itself (op level), its outermost block scope (block level), its part
   (stem / a stage / head / an aux head: stage level) or a coarser part
   (network level) - and turns IR edges between different groups into view
   edges carrying the tensor shape. `--expand SCOPE` draws the nodes under
   SCOPE one by one whatever the level; scopes around it open one level
   further so that every group stays contiguous.
2. `to_dot(view, ...)` writes the view as DOT with the python `graphviz`
   package: colours by op kind, clusters framing the scopes a drawn node sits
   inside, residual / gating / concat edges styled apart, a legend and a title.

Only turning DOT into svg/png/pdf needs the `dot` binary (`write`).

The package: `style` (colours, shapes: data), `view` (the view model and reading the IR),
`labels` (node text), `collapse` (step 1), `dot` (step 2 and files). Callers use this module's
names; the submodules are how it is organised, not separate interfaces.
Everything is emitted in IR order (the lowering order, a topological order),
so the same spec always gives byte-identical DOT.
"""
from __future__ import annotations

from .collapse import collapse
from .dot import dot_to, find_dot, render, render_side_by_side, to_dot, write
from .labels import op_text
from .style import (ANNOTATIONS, BLOCK_FILL, DENSE_FAN_IN, EDGE_STYLES, FORMATS, KIND_COLOURS, KIND_NAMES, LEVELS,
                    PART_FILL)
from .view import VEdge, VNode, View, edge_role, group_of, op_kind, parse_annotate, part_of, receptive_fields

__all__ = ["LEVELS", "ANNOTATIONS", "FORMATS", "KIND_COLOURS", "KIND_NAMES", "EDGE_STYLES", "BLOCK_FILL", "PART_FILL",
           "DENSE_FAN_IN", "collapse", "to_dot", "render", "write", "find_dot", "dot_to", "parse_annotate",
           "receptive_fields", "render_side_by_side", "View", "VNode", "VEdge", "op_kind", "op_text", "part_of",
           "group_of", "edge_role"]
