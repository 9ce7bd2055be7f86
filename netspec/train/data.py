"""Training data: `digits` (scikit-learn's bundled 8x8 handwritten digits), `fake` (random images, for
throughput) and image folders (torchvision's ImageFolder), with torchvision transforms v2.

Every dataset yields uint8 CHW images with the spec's channel count; the transform pipeline (rebuilt per
epoch, since progressive learning changes the size and the RandAugment magnitude) resizes, augments,
converts to float and normalises. Bad input is a located `SpecError` (CLI exit 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.data import Dataset, Subset

from .._torchvision import import_torchvision
from ..extras import require
from ..errors import SourceLoc, SpecError
from ..recipe import Augment

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class TransformedDataset(Dataset):
    """(image, label) pairs from `base`, through a transform that may be replaced between epochs."""

    def __init__(self, base: Dataset, transform=None):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        image, label = self.base[i]
        return (self.transform(image) if self.transform else image), label


class TensorImages(Dataset):
    """uint8 images held in memory (N, C, H, W) with integer labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


class FakeImages(Dataset):
    """Random uint8 images, the same for the same index (generated on access, nothing held in memory)."""

    def __init__(self, n: int, channels: int, size: tuple[int, int], num_classes: int, offset: int = 0):
        self.n, self.shape, self.num_classes, self.offset = n, (channels, *size), num_classes, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(self.offset + i)
        image = torch.randint(0, 256, self.shape, dtype=torch.uint8, generator=g)
        return image, int(torch.randint(0, self.num_classes, (), generator=g))


@dataclass
class Data:
    train: TransformedDataset
    val: TransformedDataset
    classes: list[str]
    name: str
    in_memory: bool            # no decoding to do: loader workers would only add overhead


def _split(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, int(round(n * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])


def digits(channels: int, seed: int, val_fraction: float) -> Data:
    load_digits = require("sklearn.datasets", "--data digits").load_digits

    d = load_digits()
    images = torch.from_numpy(d.images).float().mul(255 / 16).round().clamp(0, 255).to(torch.uint8)
    images = images.unsqueeze(1).expand(-1, channels, -1, -1).contiguous()  # grey to the spec's channels
    base = TensorImages(images, torch.from_numpy(d.target))
    tr, va = _split(len(base), val_fraction, seed)
    return Data(TransformedDataset(Subset(base, tr)), TransformedDataset(Subset(base, va)),
                [str(c) for c in d.target_names], "digits", True)


def fake(channels: int, size: tuple[int, int], num_classes: int, n_train: int) -> Data:
    return Data(TransformedDataset(FakeImages(n_train, channels, size, num_classes)),
                TransformedDataset(FakeImages(max(1, n_train // 4), channels, size, num_classes, offset=10**9)),
                [str(i) for i in range(num_classes)], "fake", True)


def _bands(path: Path) -> int:
    from PIL import Image

    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise SpecError(f"image refused: {exc}", SourceLoc(str(path)),
                        "remove the file from the image folder (PIL's limit is Image.MAX_IMAGE_PIXELS)") from None
    with im:
        return len(im.convert("RGB" if im.mode in ("P", "RGBA", "CMYK", "YCbCr") else
                              "L" if im.mode in ("LA", "1", "I", "I;16", "F") else im.mode).getbands())


class _Loader:
    """PIL loader converting to the spec's channel count (a picklable object, for loader workers)."""

    def __init__(self, channels: int):
        self.mode = "L" if channels == 1 else "RGB"

    def __call__(self, path: str):
        from PIL import Image

        try:
            with Image.open(path) as im:
                return im.convert(self.mode)
        except Image.DecompressionBombError as exc:  # a tiny file that decodes to gigabytes
            raise SpecError(f"image refused: {exc}", SourceLoc(str(path)),
                            "remove the file from the image folder (PIL's limit is Image.MAX_IMAGE_PIXELS)") from None


def image_folder(root: Path, channels: int, seed: int, val_fraction: float) -> Data:
    tv = import_torchvision()
    where = SourceLoc("--data")
    if not root.is_dir():
        raise SpecError(f"folder {root} does not exist", where,
                        "give an image folder (train/ and val/ of class folders, or class folders), 'digits' or 'fake'")
    split = (root / "train").is_dir()
    train_root = root / "train" if split else root
    if split and not (root / "val").is_dir():
        raise SpecError(f"{root} has train/ but no val/ folder", where,
                        "add val/ with the same class folders, or put the class folders directly in the root")
    try:
        probe = tv.datasets.ImageFolder(str(train_root), loader=_Loader(channels))
    except (FileNotFoundError, RuntimeError) as exc:
        raise SpecError(f"{exc}", where, "each class is a folder of images, e.g. train/cat/1.jpg") from None
    first = Path(probe.samples[0][0])
    try:
        bands = _bands(first)
    except OSError as exc:
        raise SpecError(f"cannot read image {first} ({exc})", where) from None
    if bands != channels:
        raise SpecError(f"images have {bands} channel(s) ({first.name}), the spec's input has {channels}",
                        where, f"--set input.channels={bands}, or convert the images")
    if split:
        val = tv.datasets.ImageFolder(str(root / "val"), loader=_Loader(channels))
        if val.classes != probe.classes:
            raise SpecError("train/ and val/ have different class folders", where,
                            f"train: {', '.join(probe.classes[:8])}...; val: {', '.join(val.classes[:8])}...")
        return Data(TransformedDataset(probe), TransformedDataset(val), probe.classes, str(root), False)
    tr, va = _split(len(probe), val_fraction, seed)
    return Data(TransformedDataset(Subset(probe, tr)), TransformedDataset(Subset(probe, va)), probe.classes,
                str(root), False)


def load_data(name: str, *, channels: int, size: tuple[int, int], num_classes: int, seed: int,
              val_fraction: float, fake_images: int = 1024) -> Data:
    """The dataset named by `--data`, checked against the spec's input and classes."""
    if name == "digits":
        data = digits(channels, seed, val_fraction)
    elif name == "fake":
        data = fake(channels, size, num_classes, fake_images)
    elif "/" in name or "\\" in name or Path(name).exists() or name.startswith("."):
        data = image_folder(Path(name), channels, seed, val_fraction)
    else:
        raise SpecError(f"unknown dataset '{name}'", SourceLoc("--data"),
                        "use 'digits', 'fake' or the path of an image folder (e.g. ./photos)")
    if len(data.classes) > num_classes:
        raise SpecError(f"{data.name} has {len(data.classes)} classes, the spec's head has {num_classes}",
                        SourceLoc("--data"), f"--set num_classes={len(data.classes)}")
    return data


# --------------------------------------------------------------------------- transforms

def _v2():
    import_torchvision()
    from torchvision.transforms import v2
    return v2


def _mean_std(aug: Augment, channels: int) -> tuple[list[float], list[float]]:
    def pick(values: Optional[list[float]], what: str) -> list[float]:
        if values is None:
            return [0.5] * channels
        if len(values) != channels:
            raise SpecError(f"train.augment.{what} has {len(values)} values for {channels} input channels",
                            SourceLoc("<spec>", path=f"train.augment.{what}"), "give one value per channel")
        return list(values)
    return pick(aug.mean, "mean"), pick(aug.std, "std")


def train_transform(aug: Augment, size: tuple[int, int], channels: int, randaugment: Optional[float]) -> Any:
    v2 = _v2()
    steps: list[Any] = [v2.ToImage()]
    if aug.random_resized_crop:
        steps.append(v2.RandomResizedCrop(size, scale=tuple(aug.random_resized_crop), antialias=True))
    else:
        steps.append(v2.Resize(size, antialias=True))
    if aug.hflip:
        steps.append(v2.RandomHorizontalFlip(aug.hflip))
    if aug.color_jitter:
        j = aug.color_jitter
        steps.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j if channels == 3 else None))
    if aug.autoaugment:
        steps.append(v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET))
    if aug.randaugment and randaugment is not None:
        steps.append(v2.RandAugment(num_ops=aug.randaugment.num_ops, magnitude=int(round(randaugment))))
    mean, std = _mean_std(aug, channels)
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)


def eval_transform(aug: Augment, size: tuple[int, int], channels: int) -> Any:
    v2 = _v2()
    if aug.random_resized_crop:  # trained on crops: validate on the centre crop of a larger resize
        steps = [v2.ToImage(), v2.Resize(tuple(int(s / aug.crop_ratio) for s in size), antialias=True),
                 v2.CenterCrop(size)]
    else:
        steps = [v2.ToImage(), v2.Resize(size, antialias=True)]
    mean, std = _mean_std(aug, channels)
    return v2.Compose(steps + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def batch_mixer(aug: Augment, mixup_alpha: float, num_classes: int):
    """mixup / cutmix on a batch (soft targets), or None when both are off."""
    v2 = _v2()
    mixers = []
    if mixup_alpha > 0:
        mixers.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
    if aug.cutmix_alpha > 0:
        mixers.append(v2.CutMix(alpha=aug.cutmix_alpha, num_classes=num_classes))
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)


# --------------------------------------------------------------------------- classes before loading

def data_classes(name: str) -> Optional[list[str]]:
    """The class names `--data` will have, without reading an image (None for `fake`: the spec decides).

    An image folder's classes are its class folders, sorted (torchvision's ImageFolder order)."""
    if name == "digits":
        return [str(i) for i in range(10)]
    if name == "fake" or not Path(name).is_dir():
        return None  # load_data reports a missing folder
    root = Path(name) / "train" if (Path(name) / "train").is_dir() else Path(name)
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir())
