"""Analyses: small pure functions over the graph IR (no torch).

`analyze(G, batch=1, dtype_bytes=4, profile="reference"|"full")` gathers them
into one typed `Report`; docs/analysis.md defines every metric.
"""
from .report import LEVELS, Costs, GroupReport, NodeReport, Report, analyze

__all__ = ["analyze", "Report", "Costs", "NodeReport", "GroupReport", "LEVELS"]
