"""A folder of images, one sub-folder per class, decoded once and cached as a uint8 array.

Layouts (``data.root`` is the folder itself):

- ``root/train/<class>/*`` and ``root/test/<class>/*``: the split as given;
- ``root/<class>/*``: one tree, split per class by ``split_seed`` (``test_fraction`` of each
  class, at least one image, to the test set).

Class names are the sub-folder names, sorted; hidden files and files whose extension is not an
image's are ignored. Images are converted to RGB and resized to ``data.image_size``²: ``crop``
(default) scales the shorter side to the size and cuts the centre, ``stretch`` scales both sides.

Undecodable files are refused by name (``on_undecodable: refuse``, the default: a data set is
never silently smaller than the folder), or skipped and counted (``skip``: the count is printed
and kept in the cache).

Cache: ``root/.sslprobe_cache/images-<key>.npz``, where the key is a digest of everything the
result depends on: every image file's relative path, size and modification time, the target
size, the resize method, the split settings, the undecodable-file rule and the cache format. A
second start lists the files (no decoding) and loads the array; any change to the folder gives
another key, so a stale array is never served. Where ``root`` is not writable the data are
decoded on every start.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from sslprobe.data.dataset import DataError, DatasetReader, ImageDataset, ImageSet, LabelSet, image_bytes

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"})
CACHE_FOLDER = ".sslprobe_cache"
CACHE_FORMAT = 1
Resize = Literal["crop", "stretch"]
OnUndecodable = Literal["refuse", "skip"]


def image_files(folder: Path) -> list[Path]:
    """The image files of a class folder (recursively), sorted; hidden files and folders left out."""
    found, pending = [], [str(folder)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    pending.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and entry.is_file():
                    found.append(Path(entry.path))
    return sorted(found)


def class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def decode(path: Path, size: int, resize: Resize) -> np.ndarray:
    """(size, size, 3) uint8 of the image at ``path``; raises OSError/ValueError when undecodable."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if resize == "stretch":
            image = image.resize((size, size), Image.BILINEAR)
        elif image.size != (size, size):
            width, height = image.size
            scale = size / min(width, height)
            new = (max(size, round(width * scale)), max(size, round(height * scale)))
            image = image.resize(new, Image.BILINEAR)
            left, top = (new[0] - size) // 2, (new[1] - size) // 2
            image = image.crop((left, top, left + size, top + size))
        return np.asarray(image, dtype=np.uint8)


class ImageFolderReader(DatasetReader):
    """Any folder of class sub-folders (see the module docstring for layouts, cache and rules).

    Args:
        resize: ``crop`` (shorter side to the size, centre cut) or ``stretch``.
        test_fraction: share of each class held out for testing in a one-tree layout (0 < f < 1).
        split_seed: seed of that split.
        on_undecodable: ``refuse`` (one-line error naming the file) or ``skip`` (counted).
        cache: keep the decoded array beside the data (``root/.sslprobe_cache``).
    """

    name = "image_folder"
    native_size = None

    def __init__(self, resize: Resize = "crop", test_fraction: float = 0.2, split_seed: int = 0,
                 on_undecodable: OnUndecodable = "refuse", cache: bool = True):
        if not 0 < test_fraction < 1:
            raise DataError(f"data.dataset_kwargs.test_fraction must be in (0, 1), got {test_fraction}")
        if resize not in ("crop", "stretch") or on_undecodable not in ("refuse", "skip"):
            raise DataError(f"image_folder: resize must be crop or stretch and on_undecodable refuse or skip, "
                            f"got {resize!r}, {on_undecodable!r}")
        self.resize, self.test_fraction, self.split_seed = resize, test_fraction, split_seed
        self.on_undecodable, self.cache = on_undecodable, cache

    # ---------------------------------------------------------------- layout
    def listing(self, root: Path) -> tuple[tuple[str, ...], dict[str, list[tuple[Path, int]]]]:
        """Class names and, per split, the (file, label) pairs; nothing decoded.

        Raises:
            DataError: no folder, no class folders, or a class folder without images.
        """
        if not root.is_dir():
            raise DataError(f"image folder {root} does not exist: pass --data.root to a folder of class folders")
        split_layout = (root / "train").is_dir() and (root / "test").is_dir()
        if split_layout:
            train_classes, test_classes = class_folders(root / "train"), class_folders(root / "test")
            classes = tuple(p.name for p in train_classes)
            extra = sorted({p.name for p in test_classes} - set(classes))
            if extra:
                raise DataError(f"{root / 'test'} has class folders the training set lacks: {', '.join(extra)}")
            trees = {"train": train_classes, "test": test_classes}
        else:
            trees = {"all": class_folders(root)}
            classes = tuple(p.name for p in trees["all"])
        if not classes:
            raise DataError(f"{root} has no class folders: expected {root}/train/<class>/..., "
                            f"{root}/test/<class>/..., or {root}/<class>/... holding images")
        files = {split: [] for split in ("train", "test")}
        rng = np.random.default_rng(self.split_seed)
        for split, folders in trees.items():
            for folder in folders:
                found = image_files(folder)
                if not found:
                    raise DataError(f"class folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
                label = classes.index(folder.name)
                if split != "all":
                    files[split] += [(path, label) for path in found]
                    continue
                order = rng.permutation(len(found))
                held_out = max(1, round(self.test_fraction * len(found)))
                if held_out >= len(found):
                    raise DataError(f"class folder {folder} holds {len(found)} image(s): too few to split "
                                    f"with test_fraction {self.test_fraction}")
                files["test"] += [(found[i], label) for i in sorted(order[:held_out])]
                files["train"] += [(found[i], label) for i in sorted(order[held_out:])]
        return classes, files

    def required_bytes(self, root: Path, image_size: int) -> int:
        _, files = self.listing(Path(root))
        return image_bytes(sum(len(f) for f in files.values()), image_size)

    def cache_key(self, root: Path, image_size: int, classes: tuple[str, ...], files: dict) -> str:
        """Digest of everything the decoded array depends on (files' names, sizes, mtimes; settings)."""
        digest = hashlib.sha256()
        settings = {"format": CACHE_FORMAT, "size": image_size, "resize": self.resize, "classes": classes,
                    "test_fraction": self.test_fraction, "split_seed": self.split_seed,
                    "on_undecodable": self.on_undecodable}
        digest.update(json.dumps(settings, sort_keys=True).encode())
        for split in ("train", "test"):
            for path, label in files[split]:
                stat = path.stat()
                digest.update(f"{split}\0{path.relative_to(root)}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                              .encode())
        return digest.hexdigest()[:24]

    # ---------------------------------------------------------------- reading
    def decode_split(self, pairs: list[tuple[Path, int]], image_size: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(images (N, 3, S, S) uint8, labels (N,), skipped) of ``pairs``."""
        def one(pair):
            try:
                return decode(pair[0], image_size, self.resize)
            except (OSError, ValueError, SyntaxError) as error:
                if self.on_undecodable == "refuse":
                    raise DataError(f"{pair[0]} is not a decodable image ({type(error).__name__}): remove or "
                                    "replace it, or set data.dataset_kwargs.on_undecodable: skip") from None
                return None

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            decoded = list(pool.map(one, pairs, chunksize=256))
        kept = [i for i, image in enumerate(decoded) if image is not None]
        images = np.empty((len(kept), 3, image_size, image_size), dtype=np.uint8)
        for row, index in enumerate(kept):
            images[row] = decoded[index].transpose(2, 0, 1)
        labels = np.asarray([pairs[i][1] for i in kept], dtype=np.int64)
        return images, labels, len(pairs) - len(kept)

    def read(self, root: Path, image_size: int, download: bool = False) -> ImageDataset:
        root = Path(root).expanduser()
        classes, files = self.listing(root)
        path = root / CACHE_FOLDER / f"images-{self.cache_key(root, image_size, classes, files)}.npz"
        arrays = self.load_cache(path)
        if arrays is None:
            arrays, skipped = {}, 0
            for split in ("train", "test"):
                images, labels, count = self.decode_split(files[split], image_size)
                arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
                skipped += count
            arrays["skipped"] = np.asarray(skipped)
            if skipped:
                print(f"sslprobe: image_folder {root}: skipped {skipped} undecodable file(s)", file=sys.stderr)
            if self.cache:
                self.save_cache(path, arrays)
        sets = {split: ImageSet(torch.from_numpy(arrays[f"{split}_images"]),
                                torch.from_numpy(arrays[f"{split}_labels"])) for split in ("train", "test")}
        for split, images in sets.items():
            if len(images) == 0:
                raise DataError(f"image folder {root}: no decodable {split} images")
        return ImageDataset(train=sets["train"], test=sets["test"], classes=classes, name=self.name,
                            label_set="labels",
                            label_sets={"labels": LabelSet(classes, sets["train"].labels, sets["test"].labels)})

    def load_cache(self, path: Path) -> dict | None:
        if not self.cache or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as cached:
                return {key: cached[key] for key in cached.files}
        except (OSError, ValueError):  # a damaged cache file is decoded again and replaced
            return None

    @staticmethod
    def save_cache(path: Path, arrays: dict) -> None:
        """Write the cache atomically; a read-only folder only costs the next start its decoding."""
        try:
            path.parent.mkdir(exist_ok=True)
            partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            np.savez(partial, **arrays)
            os.replace(partial, path)
        except OSError as error:
            print(f"sslprobe: image_folder: cache not written ({error.strerror or error})", file=sys.stderr)
