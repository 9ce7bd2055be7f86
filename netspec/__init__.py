"""netspec: a declarative network compiler for convolutional networks.

YAML spec -> validated `Spec` -> graph IR (networkx) -> analyses, diagrams, `torch.nn.Module`.
Importing netspec does not import torch; only `compile`/`build` do.
"""
from .api import build, compile, list_models, load, lower, report
from .errors import SpecError

__version__ = "0.1.0"
__all__ = ["load", "lower", "compile", "build", "list_models", "report", "SpecError", "__version__"]
