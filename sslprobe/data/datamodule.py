"""Any data set of the dataset contract for self-supervised training: subsets, two SimCLR views."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from sslprobe.data.augment import check_augmentation, simclr_transform
from sslprobe.data.batch_augment import SimCLRBatchAugment
from sslprobe.data.cifar import CIFAR10Reader, CIFAR100Reader  # noqa: F401 - registers the readers
from sslprobe.data.dataset import (
    DATASETS,
    DatasetReader,
    ImageDataset,
    ImageSet,
    balanced_subset,
    build_reader,
    load_dataset,
)
from sslprobe.data.image_folder import ImageFolderReader  # noqa: F401
from sslprobe.data.imbalance import (
    DEFAULT_IMBALANCE_RATIO,
    RATIO_KINDS,
    Imbalance,
    ImbalanceRatio,
    class_counts,
    load_subset,
    save_subset,
    subset_indices,
)
from sslprobe.data.sampler import GlobalBatchSampler, ResumableLoader, resume_position, sample_seed
from sslprobe.data.stl10 import STL10Reader  # noqa: F401
from sslprobe.options import (
    CheckedOptions,
    ClosedUnitInterval,
    HalfOpenUnitInterval,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

SUBSET_FILE = "subset.json"
AugmentOn = Literal["auto", "device", "workers"]
DatasetName = Literal[tuple(DATASETS)]  # the dataset registry of `sslprobe.data.dataset`


class SeededImageDataset(Dataset):
    """The uint8 image, label and augmentation seed of ``images[indices[i]]``.

    Keys are ``(i, seed)`` pairs from `GlobalBatchSampler` (the views are a pure function of
    the seed, whatever worker draws them) or plain ints (seeded by (seed, -1, i)). The views are
    made later from the whole batch by `SimCLRBatchAugment`, from the same per-sample seeds.
    """

    def __init__(self, images: ImageSet, indices: np.ndarray | None, seed: int = 0):
        self.images, self.seed = images, seed
        self.indices = torch.as_tensor(indices) if indices is not None else torch.arange(len(images))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key):
        position, seed = key if isinstance(key, tuple) else (key, sample_seed(self.seed, -1, key))
        item = int(self.indices[position])
        return self.images.images[item], self.images.labels[item], seed


class TwoViewDataset(SeededImageDataset):
    """Two views of ``images[indices[i]]`` made here by the per-sample ``transform``, and the label.

    Same keys and seeds as `SeededImageDataset`: both views are drawn from the item's seed.
    """

    def __init__(self, images: ImageSet, indices: np.ndarray | None, transform, seed: int = 0):
        super().__init__(images, indices, seed)
        self.transform = transform

    def __getitem__(self, key):
        image, label, seed = super().__getitem__(key)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            view1, view2 = self.transform(image), self.transform(image)
        return view1, view2, label


class ImageDataModule(CheckedOptions, LightningDataModule):
    """A data set in memory (CIFAR-10 by default) with a (possibly imbalanced) training subset and SimCLR views.

    Args:
        root: the folder the reader reads: it holds ``cifar-10-batches-py/`` (cifar10),
            ``cifar-100-python/`` (cifar100), ``stl10_binary/`` (stl10), or it is the image folder.
        download: fetch the data set (md5-checked) when missing, where torchvision can.
        dataset: a name of the dataset registry (``cifar10 | cifar100 | stl10 | image_folder``) or a
            `DatasetReader` given by ``class_path`` + ``init_args``.
        dataset_kwargs: options of a named data set's reader (e.g. ``unlabelled: true`` for stl10,
            ``test_fraction`` or ``on_undecodable`` for image_folder).
        label_set: which labels to use where a data set has several (cifar100: ``fine``, the
            default, or ``coarse``); None: the data set's default.
        image_size: side of the images in memory and of the views; other sizes are resized once
            on reading.
        max_memory_gb: refuse a data set whose images would take more memory than this (GiB),
            estimated before reading; None: the memory the machine has available.
        batch_size: the *global* batch: each of W processes loads ``batch_size / W`` items, so a
            config means the same experiment on 1 or N devices (the learning rate is given for it).
        eval_batch_size: batch size of validation / feature extraction.
        num_workers: DataLoader worker processes for augmentation.
        imbalance: ``full`` (all 50,000), the paper's ``none|medium|high`` 20,000-image presets,
            ``dirichlet`` (class proportions ~ Dir(concentration)), or the long-tail profiles of
            any number of classes: ``long_tail`` (n_c = ⌊n_max · ρ^(−c/(C−1))⌋) and ``step``
            (half the classes at n_max, half at ⌊n_max / ρ⌋), ρ = ``imbalance_ratio``.
        subset_size: images in the subset (presets and profiles are rescaled, keeping their
            proportions; ``dirichlet`` and ``none`` on other than ten classes default to 20,000).
        concentration: Dirichlet concentration (> 0; small = more imbalanced).
        imbalance_ratio: ρ = n_max / n_min of ``long_tail`` and ``step`` (>= 1; 100 is CIFAR-100-LT).
        subset_seed: seed of the Dirichlet draw and of which images of each class are taken.
        crop_scale: random-resized-crop scale range (the paper's imbalance runs use (0.5, 1.0)).
        augment_strength: 0 (no augmentation) to 1 (the SimCLR recipe); see `augment.py`.
        seed: seed of the epoch order and of every augmentation.
        pin_memory, persistent_workers: DataLoader switches (pinned memory speeds up the copy
            to a GPU; persistent workers save the worker start-up of every epoch).
        augment_on: where the two views are made. ``workers``: per sample by `simclr_transform`
            in the DataLoader workers; loaders yield ``(view1, view2, labels)``. ``device``: the
            loaders yield ``(uint8 images, labels, seeds)`` and `on_after_batch_transfer` makes
            both views of the whole batch on the training device with `SimCLRBatchAugment` (for
            validation and test too). ``auto``: ``device`` on every accelerator, the CPU
            included: on the 2-core CPU measured (README, Performance) the batched path costs
            about 0.23 ms of one core per image (both views) against 4.3 ms for the per-sample
            path, so it leaves more of the cores to the model. Both are pure functions of
            the per-sample seeds, so resume and multi-process runs are exact either way; the two
            paths draw equally distributed but different views.
    """

    def __init__(
        self,
        root: str = "data",
        download: bool = False,
        batch_size: PositiveInt = 256,
        eval_batch_size: PositiveInt = 512,
        num_workers: NonNegativeInt = 2,
        imbalance: Imbalance = "full",
        subset_size: PositiveInt | None = None,
        concentration: PositiveFloat = 1.0,
        imbalance_ratio: ImbalanceRatio = DEFAULT_IMBALANCE_RATIO,
        subset_seed: NonNegativeInt = 0,
        crop_scale: tuple[HalfOpenUnitInterval, HalfOpenUnitInterval] = (0.2, 1.0),
        augment_strength: ClosedUnitInterval = 1.0,
        seed: NonNegativeInt = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        augment_on: AugmentOn = "auto",
        dataset: DatasetName | DatasetReader = "cifar10",
        dataset_kwargs: dict[str, Any] | None = None,
        label_set: str | None = None,
        image_size: PositiveInt = 32,
        max_memory_gb: PositiveFloat | None = None,
        gaussian_blur: bool | None = None,
    ):
        super().__init__()  # the ranges of the annotations are checked by `CheckedOptions`
        check_augmentation(crop_scale, augment_strength)
        if augment_on not in ("auto", "device", "workers"):
            raise ValueError(f"data.augment_on must be auto, device or workers, got {augment_on!r}")
        self.save_hyperparameters()
        self.root, self.download = root, download
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.imbalance, self.subset_size, self.concentration = imbalance, subset_size, concentration
        self.imbalance_ratio = imbalance_ratio
        self.subset_seed, self.seed = subset_seed, seed
        self.crop_scale, self.augment_strength = tuple(crop_scale), augment_strength
        self.pin_memory, self.persistent_workers = pin_memory, persistent_workers
        self.augment_on = augment_on
        self.reader = build_reader(dataset, dataset_kwargs)
        self.label_set, self.image_size, self.max_memory_gb = label_set, image_size, max_memory_gb
        self.gaussian_blur = image_size > 64 if gaussian_blur is None else gaussian_blur
        self.batch_augment = SimCLRBatchAugment(self.crop_scale, augment_strength, blur=self.gaussian_blur)
        self.data: ImageDataset | None = None
        self.subset: dict | None = None
        self.resume_position = (0, 0)  # (epoch, batches of it already trained on)

    # ------------------------------------------------------------------- data
    def load(self) -> ImageDataset:
        """The data set, read once (memory estimated and checked first)."""
        if self.data is None:
            self.data = load_dataset(self.reader, self.root, self.image_size, self.download, self.max_memory_gb,
                                     self.label_set)
        return self.data

    @property
    def cifar(self) -> ImageDataset | None:
        """The data set in memory (its former name; None before it is read)."""
        return self.data

    @cifar.setter
    def cifar(self, dataset: ImageDataset | None) -> None:
        self.data = dataset

    @property
    def training_pool(self) -> ImageSet:
        """The images training draws from: the training set, plus unlabelled ones (label -1) where read."""
        data = self.load()
        return data.training_pool if data.training_pool is not None else data.train

    def data_identity(self) -> dict:
        """What names the data for caches: reader and options, label set, image size."""
        return {**self.reader.describe(), **self.data_key()}

    # ----------------------------------------------------------------- subset
    def subset_description(self) -> dict:
        return {
            "imbalance": self.imbalance,
            "requested_size": self.subset_size,
            "concentration": self.concentration if self.imbalance == "dirichlet" else None,
            "imbalance_ratio": self.imbalance_ratio if self.imbalance in RATIO_KINDS else None,
            "subset_seed": self.subset_seed,
            "data": self.data_key(),
        }

    def data_key(self) -> dict:
        """Which images the indices refer to: data set, label set, image size (subset.json keeps it)."""
        data = self.load()
        return {"dataset": data.name, "label_set": data.label_set, "image_size": self.image_size}

    def compute_subset(self) -> dict:
        data = self.load()
        labels = data.train.labels
        counts = class_counts(labels, self.imbalance, self.subset_size, self.concentration, self.subset_seed,
                              self.imbalance_ratio)
        if data.unlabelled:
            if self.imbalance != "full":
                raise ValueError(f"data.imbalance={self.imbalance!r} draws from labelled images, but the training "
                                 f"pool holds {data.unlabelled} unlabelled ones: use imbalance full, or leave the "
                                 "unlabelled images out")
            indices = np.arange(len(self.training_pool), dtype=np.int64)
        else:
            indices = subset_indices(labels, counts, self.subset_seed)
        return {**self.subset_description(), "class_counts": counts.tolist(), "size": len(indices),
                "indices": indices.tolist()}

    def resolve_subset(self, run_dir: Path | None, is_writer: bool) -> dict:
        """The subset of this run: read from ``run_dir/subset.json`` if present, else computed.

        Raises:
            ValueError: the saved subset was drawn with other settings or holds other indices.
        """
        computed = self.compute_subset()
        if self.batch_size > computed["size"]:
            raise ValueError(
                f"data.batch_size={self.batch_size} is larger than the {computed['size']} training images"
            )
        path = run_dir / SUBSET_FILE if run_dir is not None else None
        if path is not None and path.is_file():
            saved = load_subset(path)
            # a subset.json without "data" is of a run from before other data sets existed: CIFAR-10 at 32 px
            saved_data = saved.get("data", {"dataset": "cifar10", "label_set": "labels", "image_size": 32})
            if saved_data != computed["data"]:
                raise ValueError(f"{path} was drawn from other data ({saved_data} vs {computed['data']}); "
                                 "refusing to resume into it with other data")
            if saved.get("indices") != computed["indices"]:
                differing = {k: (saved.get(k), v) for k, v in self.subset_description().items() if saved.get(k) != v}
                raise ValueError(
                    f"{path} holds a different training subset than this config draws "
                    f"(saved vs requested: {differing or 'same settings, other indices'}); "
                    "refusing to resume into it with other data"
                )
            return saved
        if path is not None and is_writer:
            save_subset(path, np.asarray(computed["indices"]), np.asarray(computed["class_counts"]),
                        self.subset_description())
        return computed

    # ----------------------------------------------------------------- resume
    def state_dict(self) -> dict:
        """Where training stands in the data: saved with every checkpoint."""
        trainer = self.trainer
        if trainer is None:
            return {}
        return {
            "epoch": trainer.current_epoch,
            "batches_done": trainer.fit_loop.epoch_loop.batch_progress.current.processed,
            "batches_per_epoch": trainer.num_training_batches,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume mid-epoch at the next unseen batch, or at the next epoch's start."""
        if state:
            self.resume_position = resume_position(state)

    # -------------------------------------------------------------- lifecycle
    def setup(self, stage: str | None = None) -> None:
        self.load()
        if self.subset is None:
            trainer = self.trainer
            run_dir = Path(trainer.default_root_dir) if trainer is not None else None
            self.subset = self.resolve_subset(run_dir, trainer is None or trainer.is_global_zero)
            if trainer is not None and trainer.logger is not None:
                trainer.logger.log_hyperparams(
                    {"subset_size": self.subset["size"], "subset_class_counts": self.subset["class_counts"]}
                )

    def setup_for_run(self, run_dir: Path) -> None:
        """Load the data and the subset saved in ``run_dir`` (for measuring a finished run)."""
        self.load()
        self.subset = self.resolve_subset(Path(run_dir), is_writer=False)

    @property
    def class_counts(self) -> list[int]:
        """Per-class image counts of the training subset."""
        return list(self.subset["class_counts"])

    @property
    def class_names(self) -> list[str]:
        """The class names of the data set's labels, in label order."""
        return list(self.load().classes)

    @property
    def train_indices(self) -> np.ndarray:
        return np.asarray(self.subset["indices"], dtype=np.int64)

    def train_transform(self):
        return simclr_transform(self.crop_scale, self.augment_strength, self.image_size, self.gaussian_blur)

    @property
    def augments_on_device(self) -> bool:
        """Whether views are made from whole batches on the device (``augment_on`` resolved)."""
        return self.augment_on != "workers"

    def make_dataset(self, images: ImageSet, indices: np.ndarray | None) -> Dataset:
        """The dataset the loaders draw from: uint8 + seeds (device mode) or two views (workers)."""
        if self.augments_on_device:
            return SeededImageDataset(images, indices, self.seed)
        return TwoViewDataset(images, indices, self.train_transform(), self.seed)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """In device mode: ``(uint8 (B, 3, H, W), labels (B,), seeds (B,))`` -> ``(view1, view2, labels)``.

        Views are (B, 3, H, W) float32 on the batch's device; other batches pass unchanged.
        """
        if self.augments_on_device and len(batch) == 3 and batch[0].dtype == torch.uint8:
            images, labels, seeds = batch
            view1, view2 = self.batch_augment(images, seeds)
            return view1, view2, labels
        return batch

    def _loader(self, dataset: Dataset, batch_size: int, sampler=None) -> DataLoader:
        stateful = {"position": self.state_dict} if isinstance(sampler, GlobalBatchSampler) else {}
        return (ResumableLoader if stateful else DataLoader)(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            # Its own generator: starting an epoch's iterator must not draw from torch's global RNG,
            # whose state exact resume restores (views depend only on the sampler's seeds).
            generator=torch.Generator().manual_seed(self.seed),
            **stateful,
        )

    def train_sampler(self) -> GlobalBatchSampler:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return GlobalBatchSampler(len(self.train_indices), self.batch_size, self.seed, True, rank, world)

    def train_dataloader(self) -> DataLoader:
        sampler = self.train_sampler()
        epoch, batches_done = self.resume_position
        sampler.set_epoch(epoch)  # the loader may start its workers before the trainer sets the epoch
        sampler.skip(epoch, batches_done)
        dataset = self.make_dataset(self.training_pool, self.train_indices)
        return self._loader(dataset, sampler.local_batch, sampler)

    def val_dataloader(self) -> DataLoader:
        """Two fixed-seed views of the test set (the SSL loss on held-out images)."""
        return self._loader(self.make_dataset(self.load().test, None), self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def probe_views(
        self, num_images: int, seed: int = 0, device: torch.device | str = "cpu", batch_size: int = 512
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two views of ``num_images`` training-subset images, made by the training augmentation path.

        The images are drawn from the subset by ``seed`` (sorted by index); image i of them gets
        the per-sample seed ``sample_seed(seed, -1, i)``, as evaluation views do, and its views are
        made exactly as training makes them: by `SimCLRBatchAugment` on ``device`` when
        ``augments_on_device``, else by `simclr_transform` per sample (the loaders' paths).

        Returns:
            ``(view1, view2)``, each (num_images, 3, S, S) float32 on ``device`` (S = ``image_size``).
        """
        indices = self.train_indices
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}")
        generator = torch.Generator().manual_seed(seed)
        chosen = np.sort(indices[torch.randperm(len(indices), generator=generator)[:num_images].numpy()])
        if not self.augments_on_device:
            dataset = TwoViewDataset(self.training_pool, chosen, self.train_transform(), seed)
            views = [dataset[i] for i in range(len(dataset))]
            return (torch.stack([v[0] for v in views]).to(device), torch.stack([v[1] for v in views]).to(device))
        dataset = SeededImageDataset(self.training_pool, chosen, seed)
        view1, view2 = [], []
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            images = torch.stack([item[0] for item in items]).to(device)
            seeds = torch.tensor([item[2] for item in items], dtype=torch.int64)
            first, second = self.batch_augment(images, seeds)
            view1.append(first)
            view2.append(second)
        return torch.cat(view1), torch.cat(view2)

    def evaluation_sets(self) -> tuple[ImageSet, ImageSet]:
        """The labelled train and test sets (CIFAR-10: 50,000 and 10,000), for probes."""
        data = self.load()
        return data.train, data.test

    def balanced_evaluation_sets(
        self, train_size: int | None, test_size: int | None, seed: int
    ) -> tuple[ImageSet, ImageSet]:
        """Fixed class-balanced subsets of the evaluation sets, for probes.

        ``train_size // C`` training and ``test_size // C`` test images of each of the C classes, chosen
        by ``seed`` (`balanced_subset`; all images where a size is None). The same arguments give
        the same images on every process and after a resume.
        """
        train, test = self.evaluation_sets()
        return balanced_subset(train, train_size, seed), balanced_subset(test, test_size, seed)


CIFAR10DataModule = ImageDataModule  # the former name, kept for code that imports it
