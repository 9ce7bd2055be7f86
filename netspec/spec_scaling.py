"""The spec language's scaling section as pydantic models: width / depth / resolution / compound
policies with their rounding rules, and named variants (what `netspec.scale` applies)."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import Field, StringConstraints, model_validator

from .spec_types import Model, Name

PositiveNumber = Annotated[float, Field(gt=0, allow_inf_nan=False)]
# the compound coefficient, as the CLI's --phi takes it (B7 is about 7; 1.2**16 = 18x the depth)
Phi = Annotated[float, Field(ge=0, le=16, allow_inf_nan=False)]
VariantName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]+$")]


class WidthRounding(Model):
    """A named channel rounding rule (`netspec.rounding`) and its settings.

    make_divisible - TF/timm/torchvision: half up to a multiple of `divisor`, at least `min_value`, plus one
                     divisor if rounding lost more than 1 - `round_limit` (the 10 % guard; 0 turns it off);
    slim           - TF-slim MobileNet v1: max(int(c * width), `min_depth`), truncation;
    round          - int(round(c * width)), ties to even, at least 1.
    """

    RULE_FIELDS: ClassVar[dict[str, set[str]]] = {
        "make_divisible": {"divisor", "min_value", "round_limit"}, "slim": {"min_depth"}, "round": set()}

    rule: Literal["make_divisible", "slim", "round"] = "make_divisible"
    divisor: Annotated[int, Field(ge=1)] = Field(8, description="make_divisible: the multiple")
    min_value: Optional[Annotated[int, Field(ge=1)]] = Field(
        None, description="make_divisible: lowest result (default: divisor)")
    round_limit: Annotated[float, Field(ge=0, le=1)] = Field(
        0.9, description="make_divisible: add one divisor if rounding lost more than 1 - round_limit; 0 = no guard")
    min_depth: Annotated[int, Field(ge=1)] = Field(8, description="slim: lowest result")

    @model_validator(mode="after")
    def _fields_of_rule(self) -> "WidthRounding":
        stray = sorted(self.model_fields_set - {"rule"} - self.RULE_FIELDS[self.rule])
        if stray:
            raise ValueError(f"{', '.join(stray)} does not apply to rule '{self.rule}' "
                             f"(its settings: {', '.join(sorted(self.RULE_FIELDS[self.rule])) or 'none'})")
        return self


class _Shorthand(Model):
    """A policy that may be written as its main value alone: `width: 1.4` is `width: {multiplier: 1.4}`
    (so `--set scaling.width=1.4` works)."""

    SHORTHAND: ClassVar[str] = "multiplier"

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        return value if isinstance(value, dict) or value is None else {cls.SHORTHAND: value}


class WidthScaling(_Shorthand):
    """Channel scaling: every literal integer under a `keys` parameter of a stem, stage or head entry
    is multiplied and rounded; expressions (`$num_classes`, `$c2`) are taken as written."""

    multiplier: PositiveNumber = Field(1.0, description="width multiplier (MobileNet alpha, EfficientNet w)")
    rounding: WidthRounding = Field(default_factory=WidthRounding)
    keys: list[Name] = Field(default_factory=lambda: ["out"], description="entry parameters that hold channels")
    fixed: list[str] = Field(default_factory=list, description=(
        "entries whose channels never scale: 'stem', 'head', 'stem.conv', 'head.conv', 'stages.3' "
        "(index or stage name), 'stages.3.blocks.0'"))
    min_multiplier: dict[str, PositiveNumber] = Field(default_factory=dict, description=(
        "entries scaled by max(multiplier, value) - MobileNetV2's last conv: {head.conv: 1.0}"))


class DepthScaling(_Shorthand):
    """Repeat scaling of stage entries with a literal integer `repeat`."""

    multiplier: Union[PositiveNumber, list[PositiveNumber]] = Field(
        1.0, description="depth multiplier, or one per stage (non-uniform scaling)")
    rounding: Literal["ceil", "round"] = Field(
        "ceil", description="ceil(n*d) (TF, torchvision, timm default) or max(1, round(n*d)) (timm 'round')")
    fixed_stages: list[Union[int, Name]] = Field(
        default_factory=list, description="stages whose repeats never scale: index (negative from the end) or name")


class ResolutionScaling(_Shorthand):
    """The input size: set, or the spec's size times a multiplier rounded to a multiple of `divisor`."""

    SHORTHAND: ClassVar[str] = "size"
    size: Optional[Annotated[int, Field(ge=1)]] = Field(None, description="set the input size (wins over multiplier)")
    multiplier: PositiveNumber = 1.0
    divisor: Annotated[int, Field(ge=1)] = 1


class CompoundScaling(Model):
    """EfficientNet compound scaling: depth alpha^phi, width beta^phi, resolution gamma^phi."""

    phi: Optional[Phi] = Field(None, description="compound coefficient; unset = no compound scaling")
    alpha: Annotated[float, Field(ge=1)] = Field(1.2, description="depth base")
    beta: Annotated[float, Field(ge=1)] = Field(1.1, description="width base")
    gamma: Annotated[float, Field(ge=1)] = Field(1.15, description="resolution base")


class Scaling(Model):
    """Compile-time scaling policies, applied before lowering (`netspec.scale`)."""

    width: WidthScaling = Field(default_factory=WidthScaling)
    depth: DepthScaling = Field(default_factory=DepthScaling)
    resolution: ResolutionScaling = Field(default_factory=ResolutionScaling)
    compound: CompoundScaling = Field(default_factory=CompoundScaling)


class Variant(Model):
    """A named preset of a family (`--variant b3`): scaling values plus any other spec value."""

    doc: str = ""
    width: Optional[PositiveNumber] = Field(None, description="scaling.width.multiplier")
    depth: Optional[Union[PositiveNumber, list[PositiveNumber]]] = Field(None, description="scaling.depth.multiplier")
    resolution: Optional[Annotated[int, Field(ge=1)]] = Field(None, description="input size")
    phi: Optional[Phi] = Field(None, description="scaling.compound.phi")
    dropout: Optional[Annotated[float, Field(ge=0, lt=1)]] = Field(None, description="sets vars.dropout")
    drop_path_rate: Optional[Annotated[float, Field(ge=0, lt=1)]] = None
    set: dict[str, Any] = Field(default_factory=dict, description=(
        "any other values by path, as --set: {defaults.batchnorm.eps: 0.001, vars.c2: 48}"))
