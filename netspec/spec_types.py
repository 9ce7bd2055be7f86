"""The constrained strings and the base model every spec model uses (pydantic, no netspec state).

A name that becomes a module (a key of `state_dict()`, an attribute in ejected code) is checked by
`netspec.escape.module_key_problem`, the same rule the compiled and the ejected module rely on.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError

from .escape import module_key_problem

Expr = Annotated[str, StringConstraints(pattern=r"\$")]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def _module_path(path: str) -> str:
    """Every part of a module path (an entry, stage or aux-head name, a scope) must be usable as an
    attribute of the compiled and the ejected module (netspec.escape.module_key_problem)."""
    for part in path.split("."):
        problem = module_key_problem(part)
        if problem:
            raise PydanticCustomError("module_name", "'{part}' cannot name a module: it {problem}",
                                      {"part": part, "problem": problem})
    return path


# a name that becomes a module (a key of state_dict(), an attribute in ejected code)
ModuleName = Annotated[Name, AfterValidator(_module_path)]
ModulePath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$"),
                       AfterValidator(_module_path)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
