"""The one error type a user sees: `SpecError`, a list of located issues.

Every stage of the pipeline (YAML parsing, schema validation, template
expansion, shape inference) reports problems through it, so the CLI has a
single place that prints `file:line:col: path: message` plus a hint and exits 2.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable, Sequence


@dataclass(frozen=True)
class SourceLoc:
    """Where a value came from: file, 1-based line/column and the path inside the spec."""

    file: str = "<spec>"
    line: int = 0
    col: int = 0
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.path}" if self.path else where

    def at(self, path: str) -> "SourceLoc":
        return SourceLoc(self.file, self.line, self.col, path)


@dataclass(frozen=True)
class Issue:
    loc: SourceLoc
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.loc}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


@dataclass
class SpecError(Exception):
    """An invalid spec. Holds one or more located issues."""

    issues: list[Issue] = field(default_factory=list)

    def __init__(self, issues: Issue | Iterable[Issue] | str, loc: SourceLoc | None = None, hint: str = ""):
        if isinstance(issues, str):
            issues = [Issue(loc or SourceLoc(), issues, hint)]
        elif isinstance(issues, Issue):
            issues = [issues]
        self.issues = list(issues)
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.issues)
        head = "" if n == 1 else f"{n} problems in spec:\n"
        return head + "\n".join(str(i) for i in self.issues)

    @property
    def first(self) -> Issue:
        return self.issues[0]


def did_you_mean(word: str, choices: Sequence[str], what: str = "") -> str:
    """A 'did you mean' hint, or a list of valid choices when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    listed = ", ".join(sorted(str(c) for c in choices))
    if len(listed) > 300:
        listed = listed[:300] + ", ..."
    return f"valid {what or 'choices'}: {listed}" if listed else ""
