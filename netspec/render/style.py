"""What a diagram can show (levels, annotations, file formats) and how it looks: colours by op
kind, edge styles by role, node shapes and fills. Data only."""
from __future__ import annotations


LEVELS = ("network", "stage", "block", "op")
ANNOTATIONS = ("shapes", "params", "macs", "rf")
FORMATS = (".dot", ".gv", ".svg", ".png", ".pdf")
# Fill colours by op kind (node attr `kind`, with depthwise convs split from dense ones).
KIND_COLOURS = {
    "input": "#eeeeee",
    "conv": "#9ecae1",
    "dwconv": "#c6b3e6",
    "norm": "#fdd49e",
    "activation": "#c7e9c0",
    "pool": "#fcbba1",
    "elementwise": "#fff7a8",
    "data": "#cfcfcf",
    "linear": "#f4a6c9",
    "regularizer": "#dfe6ee",
}
KIND_NAMES = {"dwconv": "depthwise conv", "elementwise": "element-wise", "data": "data (concat, split, ...)",
              "regularizer": "dropout / drop path"}
# How edges look by role; `role` is decided on IR edges (see `edge_role`).
EDGE_STYLES = {
    "data": {"color": "#555555"},
    "residual": {"color": "#d62728", "style": "dashed", "penwidth": "1.8"},
    "gate": {"color": "#8e44ad", "style": "dotted", "penwidth": "1.5"},
    "concat": {"color": "#1f77b4", "penwidth": "1.8"},
    "aux": {"color": "#888888", "style": "dashed"},
}
EDGE_NAMES = {"residual": "residual (skip into add)", "gate": "scaled input (into mul, e.g. SE)",
              "concat": "branch into concat", "aux": "to auxiliary head"}
# A node with more inputs than this whose inputs lie on one chain (each an ancestor of the nearest
# one) is a dense gather (DenseNet: each layer reads every earlier output of its block). It is
# drawn with its nearest input, that edge saying how many more it reads: every edge would make the
# drawing quadratic in the block's length (Graphviz takes minutes at DenseNet-169's 1,250 edges).
# Parallel branches (Inception's concats) are no chain and keep all their edges.
DENSE_FAN_IN = 3
ROLE_RANK = {"data": 0, "aux": 1, "concat": 2, "gate": 3, "residual": 4}
# Op-level node shapes for joins and splits, so they read as such.
OP_SHAPES = {"add": ("circle", "+"), "mul": ("circle", "×"), "concat": ("invtrapezium", None),
             "chunk": ("trapezium", None)}
BLOCK_FILL = "#f7fbff"
PART_FILL = "#deebf7"
AUX_FILL = "#f2f2f2"
MAX_STRIP = 28       # op cells drawn in a block's composition strip
LEGEND_ROW = 6       # legend entries per row
MAX_RUNS = 4         # block runs listed in a stage node
