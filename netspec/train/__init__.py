"""Training a compiled network with the recipe of its spec (`netspec train`, `netspec eval`).

    recipe.py (front end, no torch)  ->  optim.py   optimizer, lr schedule, loss, weight EMA
                                         data.py    digits / fake / image folders, transforms v2
                                         loop.py    the epoch loop, one process or DDP under torchrun
                                         rundir.py  metrics.jsonl, checkpoint.pt, best.pt, curves.png

Imports torch (and, lazily, torchvision, scikit-learn, matplotlib, tqdm); `import netspec` does not import it.
"""
from .loop import Options, evaluate, train

__all__ = ["Options", "train", "evaluate"]
