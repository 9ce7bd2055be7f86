"""The training recipe: the `train:` section of a spec, as pydantic models (no torch here).

A recipe is data, validated like the rest of the spec (unknown keys and bad values are located at
`file:line:col` with a hint) and overridable with `--set train.epochs=30`. `netspec.train` turns it into
an optimizer, a learning-rate schedule, a loss, an EMA of the weights, data augmentation and a
progressive-learning schedule. Fields that only apply to one kind of optimizer or schedule are rejected
on the others (`nesterov` on RMSprop is an error, not silently ignored).

Variants of a family that train differently (EfficientNetV2 S/M/L) override recipe fields through the
variant's `set:` table, like any other spec value: `m: {set: {train.progressive.size: [128, 380]}}`.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNeg = Annotated[float, Field(ge=0)]
Fraction01 = Annotated[float, Field(ge=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]
PosInt = Annotated[int, Field(ge=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Typed(_Model):
    """A model whose `type` decides which of its other fields apply (like `WidthRounding.rule`)."""

    TYPE_FIELDS: ClassVar[dict[str, set[str]]] = {}
    COMMON: ClassVar[set[str]] = set()

    @model_validator(mode="after")
    def _fields_of_type(self):
        kind = getattr(self, "type")
        allowed = self.TYPE_FIELDS[kind] | self.COMMON
        stray = sorted(self.model_fields_set - {"type"} - allowed)
        if stray:
            raise ValueError(f"{', '.join(stray)} does not apply to {self.__class__.__name__.lower()} '{kind}' "
                             f"(its settings: {', '.join(sorted(allowed)) or 'none'})")
        return self


class Optimizer(_Typed):
    """The optimizer and its settings. `lr` is used as written, or scaled linearly from `lr_for_batch` to the
    global batch (see docs/training.md)."""

    TYPE_FIELDS: ClassVar[dict[str, set[str]]] = {
        "sgd": {"momentum", "nesterov"},
        "rmsprop": {"momentum", "decay", "eps"},
        "adamw": {"betas", "eps"},
    }
    COMMON: ClassVar[set[str]] = {"lr", "lr_for_batch", "weight_decay", "no_decay_bn_bias"}

    type: Literal["sgd", "rmsprop", "adamw"] = "sgd"
    lr: Positive = Field(0.1, description="peak learning rate (after warm-up)")
    lr_for_batch: Optional[PosInt] = Field(None, description=(
        "the global batch `lr` was set for; when given, lr is scaled linearly to the actual global batch "
        "(batch_size x processes), Goyal et al. 2017. Unset: lr is used as written"))
    weight_decay: NonNeg = Field(0.0, description="L2 penalty (AdamW: decoupled weight decay)")
    no_decay_bn_bias: bool = Field(False, description="exempt BatchNorm weights and all biases from weight decay")
    momentum: Fraction01 = Field(0.9, description="sgd, rmsprop: momentum")
    nesterov: bool = Field(False, description="sgd: Nesterov momentum")
    decay: Fraction01 = Field(0.9, description="rmsprop: decay of the squared-gradient average (torch `alpha`)")
    eps: Positive = Field(1e-8, description="rmsprop (TF-style papers use 1.0 or 0.001), adamw: epsilon")
    betas: tuple[Fraction01, Fraction01] = Field((0.9, 0.999), description="adamw: betas")


class Schedule(_Typed):
    """Learning rate over training, after a linear warm-up from `warmup_start` x lr.

    constant; step (x gamma at each epoch of `milestones`); cosine (to `min_lr` at the last epoch); linear (to
    `min_lr` at the last epoch: ShuffleNet, Caffe's "poly" with power 1: SqueezeNet);
    exponential (x gamma every `every` epochs, staircase, as TF's exponential_decay); plateau (x gamma when the
    validation top-1 has not improved for `patience` epochs: "divide by 10 when the validation error stops
    improving", AlexNet and VGG)."""

    TYPE_FIELDS: ClassVar[dict[str, set[str]]] = {
        "constant": set(), "step": {"milestones", "gamma"}, "cosine": {"min_lr"}, "linear": {"min_lr"},
        "exponential": {"every", "gamma"}, "plateau": {"patience", "gamma", "min_lr"},
    }
    COMMON: ClassVar[set[str]] = {"warmup_epochs", "warmup_start"}

    type: Literal["constant", "step", "cosine", "linear", "exponential", "plateau"] = "constant"
    warmup_epochs: NonNeg = Field(0.0, description="linear warm-up length in epochs (may be fractional)")
    warmup_start: NonNeg = Field(0.0, description="warm-up starts at this fraction of lr")
    milestones: list[PosInt] = Field(default_factory=list, description="step: epochs at which lr is multiplied by gamma")
    gamma: Annotated[float, Field(gt=0, le=1)] = Field(0.1, description="step, exponential, plateau: the factor")
    every: Positive = Field(1.0, description="exponential: decay period in epochs (EfficientNet: 2.4)")
    min_lr: NonNeg = Field(0.0, description="cosine, linear: final lr; plateau: lowest lr")
    patience: Annotated[int, Field(ge=0)] = Field(5, description="plateau: epochs without improvement")


class RandAugment(_Model):
    num_ops: PosInt = Field(2, description="transformations per image")
    magnitude: Annotated[float, Field(ge=0, le=30)] = Field(9, description="strength, 0..30 (torchvision's bins)")


class Augment(_Model):
    """Training-time augmentation, with torchvision's transforms v2. Validation only resizes (and centre-crops
    when `random_resized_crop` is on, at size / `crop_ratio`)."""

    random_resized_crop: Optional[tuple[Annotated[float, Field(gt=0, le=1)], Annotated[float, Field(gt=0, le=1)]]] = \
        Field(None, description="area range, e.g. [0.08, 1.0] (Inception-style crops); null = resize only")
    crop_ratio: Annotated[float, Field(gt=0, le=1)] = Field(0.875, description="validation centre crop (224/256)")
    hflip: Annotated[float, Field(ge=0, le=1)] = Field(0.0, description="probability of a horizontal flip")
    color_jitter: NonNeg = Field(0.0, description="brightness, contrast and saturation jitter strength")
    autoaugment: bool = Field(False, description="AutoAugment's ImageNet policy (Cubuk et al. 2019; EfficientNet)")
    randaugment: Optional[RandAugment] = None
    mixup_alpha: NonNeg = Field(0.0, description="mixup Beta(alpha, alpha); 0 = off")
    cutmix_alpha: NonNeg = Field(0.0, description="cutmix Beta(alpha, alpha); 0 = off (with mixup: one per batch)")
    mean: Optional[list[float]] = Field(None, description="normalisation mean per channel (default 0.5)")
    std: Optional[list[float]] = Field(None, description="normalisation std per channel (default 0.5)")


Range = tuple[float, float]


class Progressive(_Model):
    """EfficientNetV2's progressive learning: training is split into `stages` equal parts; from the first to the
    last stage the image size and the regularisation grow linearly (a null range leaves that setting alone)."""

    stages: PosInt = Field(4, description="number of stages (EfficientNetV2: 4 of ~87 epochs)")
    size: Optional[tuple[PosInt, PosInt]] = Field(None, description="training image size, first -> last stage")
    dropout: Optional[tuple[Fraction01, Fraction01]] = Field(None, description="dropout rate of every dropout layer")
    randaugment: Optional[tuple[Annotated[float, Field(ge=0, le=30)], Annotated[float, Field(ge=0, le=30)]]] = \
        Field(None, description="RandAugment magnitude")
    mixup: Optional[tuple[NonNeg, NonNeg]] = Field(None, description="mixup alpha")


class Ema(_Model):
    decay: Annotated[float, Field(gt=0, lt=1)] = Field(0.9999, description="per-step decay of the weight average")
    warmup: bool = Field(True, description="use min(decay, (1 + t) / (10 + t)) at step t, as TF's ExponentialMovingAverage "
                                           "with num_updates")


class Recipe(_Model):
    """How the network is trained (`netspec train`)."""

    doc: str = Field("", description="where the recipe comes from")
    epochs: PosInt = 10
    batch_size: PosInt = Field(64, description="images per process and step; the global batch is this x processes")
    optimizer: Optimizer = Field(default_factory=Optimizer)
    schedule: Schedule = Field(default_factory=Schedule)
    label_smoothing: Fraction01 = Field(0.0, description="Inception v3: 0.1")
    aux_weights: dict[str, NonNeg] = Field(default_factory=dict, description=(
        "loss weight of each auxiliary head by name (GoogLeNet: 0.3 each); heads not named weigh 0"))
    ema: Optional[Ema] = Field(None, description="exponential moving average of the weights, used for validation")
    grad_clip: Optional[Positive] = Field(None, description="clip the global gradient norm to this")
    seed: int = Field(0, description="weights, data split, shuffling and augmentation")
    augment: Augment = Field(default_factory=Augment)
    progressive: Optional[Progressive] = None

    @model_validator(mode="after")
    def _progressive_fits(self) -> "Recipe":
        if self.progressive and self.progressive.stages > self.epochs:
            raise ValueError(f"progressive.stages ({self.progressive.stages}) is more than epochs ({self.epochs})")
        return self


def resolved_data(recipe: Recipe) -> dict:
    """The recipe with every default filled in, minus the settings its optimizer and schedule do not take
    (what `netspec train` writes to RUN_DIR/spec.yaml; it validates again)."""
    data = recipe.model_dump(mode="json")
    for key, model in (("optimizer", recipe.optimizer), ("schedule", recipe.schedule)):
        keep = {"type"} | model.COMMON | model.TYPE_FIELDS[model.type]
        data[key] = {k: v for k, v in data[key].items() if k in keep}
    return data


def interpolate(first: float, last: float, stage: int, stages: int) -> float:
    """Linear from `first` (stage 0) to `last` (stage `stages` - 1)."""
    return first if stages == 1 else first + (last - first) * stage / (stages - 1)


def stage_of(epoch: int, epochs: int, stages: int) -> int:
    """The progressive stage of a 0-based epoch: `stages` equal parts of the run."""
    return min(stages - 1, epoch * stages // epochs)


def stage_settings(recipe: Recipe, epoch: int, base_size: tuple[int, int]) -> dict[str, Any]:
    """Image size, dropout, RandAugment magnitude and mixup alpha for a 0-based epoch (None = leave as is)."""
    p = recipe.progressive
    ra = recipe.augment.randaugment
    out: dict[str, Any] = {"stage": 0, "size": tuple(base_size), "dropout": None,
                           "randaugment": ra.magnitude if ra else None, "mixup": recipe.augment.mixup_alpha}
    if p is None:
        return out
    k = stage_of(epoch, recipe.epochs, p.stages)
    out["stage"] = k
    if p.size:
        s = int(round(interpolate(*p.size, k, p.stages)))
        out["size"] = (s, s)
    if p.dropout:
        out["dropout"] = interpolate(*p.dropout, k, p.stages)
    if p.randaugment:
        out["randaugment"] = interpolate(*p.randaugment, k, p.stages)
    if p.mixup:
        out["mixup"] = interpolate(*p.mixup, k, p.stages)
    return out
