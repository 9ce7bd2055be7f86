"""Analyses: small pure functions over the graph IR (no torch)."""
