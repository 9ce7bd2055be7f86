"""Latency you can predict: a per-device cost model fitted by `netspec calibrate` (torch) and applied
to the graph IR by `predict` (no torch). See docs/performance.md#predicted-latency.

    profile = load_profile("~/.config/netspec/device.json")
    p = predict(G, profile, batch=1)      # p.network, p.stages, p.blocks, p.nodes: seconds
"""
from .predict import LatencyPrediction, predict
from .profile import Profile, default_profile_path, load_profile

__all__ = ["LatencyPrediction", "Profile", "default_profile_path", "load_profile", "predict"]
