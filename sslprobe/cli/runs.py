"""Run directories (experiment, version), checkpoints and the checks that run before anything is created."""
from __future__ import annotations

import itertools
import os
import re
import tempfile
import time
from pathlib import Path

from sslprobe.data.datamodule import ImageDataModule
from sslprobe.methods import METHODS, SSLMethod

DEFAULT_ROOT = "runs"


def wandb_logged_in() -> bool:
    """Whether W&B credentials exist (no network call is made)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def next_version(experiment_dir: Path) -> str:
    """``version_<n>`` with n one above the largest existing one."""
    numbers = [
        int(match.group(1))
        for child in (experiment_dir.iterdir() if experiment_dir.is_dir() else [])
        if (match := re.fullmatch(r"version_(\d+)", child.name))
    ]
    return f"version_{max(numbers, default=-1) + 1}"


def latest_version(experiment_dir: Path) -> str | None:
    """The most recently modified run of an experiment that holds checkpoints/last.ckpt."""
    runs = [c for c in experiment_dir.iterdir() if (c / "checkpoints" / "last.ckpt").is_file()] \
        if experiment_dir.is_dir() else []
    return max(runs, key=lambda c: (c / "checkpoints" / "last.ckpt").stat().st_mtime).name if runs else None


def shared_version(experiment_dir: Path) -> str:
    """The version of a new run, the same in every process of a distributed launch.

    Processes that Lightning spawns inherit ``SSLPROBE_RUN_VERSION=<parent pid>:<version>`` from
    the first one; under an external launcher (torchrun, SLURM) the job id names the run.
    """
    parent, _, inherited = os.environ.get("SSLPROBE_RUN_VERSION", "").partition(":")
    if inherited and parent == str(os.getppid()):
        return inherited
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("TORCHELASTIC_RUN_ID")
    if job and job != "none":
        version = f"job_{job}"
    elif "RANK" in os.environ or "SLURM_PROCID" in os.environ:
        raise ValueError("launched as one of several processes without a job id: pass --run.version NAME")
    else:
        version = next_version(experiment_dir)
    os.environ["SSLPROBE_RUN_VERSION"] = f"{os.getpid()}:{version}"
    return version


def default_experiment(config) -> str:
    """``<method>_<backbone>_<imbalance>``, e.g. ``simclr_resnet18_full``; a data set other than
    CIFAR-10 is appended (``simclr_resnet18_full_cifar100``)."""
    model = config.model
    method = str(model.class_path).rsplit(".", 1)[-1].lower()
    backbone = model.init_args.get("backbone", "resnet18")
    if not isinstance(backbone, str):  # a module given by class_path: its class name
        backbone = str(backbone.get("class_path", "backbone")).rsplit(".", 1)[-1].lower()
    dataset = config.data.get("dataset", "cifar10")
    if not isinstance(dataset, str):  # a reader given by class_path: its class name
        dataset = str(dataset.get("class_path", "dataset")).rsplit(".", 1)[-1].lower()
    suffix = "" if dataset == "cifar10" else f"_{dataset}"
    return f"{method}_{backbone}_{config.data.imbalance}{suffix}"


def _as_list(value) -> list:
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, list) else [value]


# Types beyond torch's weights-only defaults (tensors, dicts, lists, tuples, strings, numbers,
# OrderedDict) that this project's checkpoints hold. Measured on real checkpoints of every method
# with all probes (tests/cli/test_untrusted_files.py): none. RNG states, the sampler position,
# the probes' histories and the hyper-parameters are all stored as tensors and plain types.
CHECKPOINT_GLOBALS: tuple = ()


def load_checkpoint(path: Path, option: str = "--ckpt_path") -> dict:
    """``torch.load(path, weights_only=True)`` with `CHECKPOINT_GLOBALS`, or one clear error.

    A pickle that names any other global (a function to call, a class to build) is refused before
    anything in it runs; the error names the file and the global.
    """
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            unsafe = []
        if unsafe:
            raise ValueError(f"{option} {path} refused: it refers to {', '.join(unsafe)}, which no sslprobe "
                             "checkpoint contains (loading it could run code)") from None
        raise ValueError(f"{option} {path} is not a readable checkpoint (UnpicklingError); "
                         "it may be truncated: resume from another file in checkpoints/") from None
    except Exception as error:
        raise ValueError(f"{option} {path} is not a readable checkpoint ({type(error).__name__}); "
                         "it may be truncated: resume from another file in checkpoints/") from None


def check_checkpoint(path: Path, model_config) -> None:
    """A readable checkpoint of the same method and architecture as the config, or a clear error."""
    if not path.is_file():
        raise FileNotFoundError(f"--ckpt_path {path} does not exist")
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"--ckpt_path {path} is not a Lightning checkpoint (no state_dict)")
    saved = checkpoint.get("hyper_parameters", {})
    method_class = METHODS.get(str(model_config.class_path).rsplit(".", 1)[-1], SSLMethod)
    wanted = {"_class_path": model_config.class_path,
              **{key: model_config.init_args.get(key) for key in method_class.architecture_keys}}
    differing = [f"{key.lstrip('_')}: checkpoint {saved.get(key)!r} vs config {value!r}"
                 for key, value in wanted.items() if key in saved and saved.get(key) != value]
    if differing:
        raise ValueError(f"--ckpt_path {path} was trained with another model ({'; '.join(differing)})")


def check_writable(root: Path) -> None:
    """``root`` exists and takes files, or can be created; no directory is left behind by the check."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a directory")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise PermissionError(f"trainer.default_root_dir {root} is not writable ({error.strerror or error})") from None


def check_data(datamodule: ImageDataModule, run_dir: Path) -> None:
    """Load the data set and draw the training subset now, so bad data fails before any logger starts.

    Nothing is written into the run: ``subset.json`` is saved later by the datamodule's ``setup``.
    """
    datamodule.load()
    datamodule.resolve_subset(run_dir, is_writer=False)


def keep_metrics(run_dir: Path) -> Path | None:
    """Rename ``metrics.csv`` of a run about to resume to ``metrics.until_<time>.csv`` (the CSV logger
    starts a fresh one); a name taken already (two resumes within a second) gets ``-2``, ``-3``, ...
    Returns the new path (None: no metrics.csv)."""
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    names = (f"metrics.until_{stamp}{f'-{n}' if n > 1 else ''}.csv" for n in itertools.count(1))
    kept = next(run_dir / name for name in names if not (run_dir / name).exists())
    metrics.rename(kept)
    return kept


def check_model_fits_data(model, datamodule: ImageDataModule) -> None:
    """A classifier's class count is the data's, and it is not given unlabelled images."""
    num_classes = getattr(model, "hparams", {}).get("num_classes")
    if num_classes is None:
        return
    data = datamodule.load()
    if num_classes != len(data.classes):
        raise ValueError(f"model.init_args.num_classes={num_classes}, but {data.name} ({data.label_set}) has "
                         f"{len(data.classes)} classes: set --model.init_args.num_classes {len(data.classes)}")
    if data.unlabelled:
        raise ValueError(f"{type(model).__name__} trains on labels, but the training pool holds {data.unlabelled} "
                         "unlabelled images: leave them out (data.dataset_kwargs)")


def check_devices(trainer_config) -> None:
    """CPU processes beyond the machine's cores are refused (GPUs are checked by Lightning)."""
    import torch

    devices, accelerator = trainer_config.get("devices"), trainer_config.get("accelerator")
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    on_cpu = accelerator == "cpu" or (accelerator in (None, "auto") and not torch.cuda.is_available())
    cores = os.cpu_count() or 1
    if on_cpu and isinstance(devices, int) and devices > cores:
        raise ValueError(f"trainer.devices={devices} CPU processes, but this machine has {cores} cores")


def wandb_run_id(experiment: str, version: str) -> str:
    """The W&B run id of a run directory (``fit``, its resumes and ``probe`` all log to it)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{experiment}-{version}")


def main_process() -> bool:
    """Whether this is the first process of a launch (hints are printed once, not per rank)."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"))


def load_run(checkpoint_path: Path, device: str = "cpu", data=None) -> tuple[dict, SSLMethod, ImageDataModule]:
    """A run's ``config.yaml``, its method loaded from ``checkpoint_path`` (inside RUN/checkpoints/) and its
    datamodule with the run's training subset; ``data``: images already read, to reuse instead of reading them."""
    import importlib

    import yaml

    run_dir = Path(checkpoint_path).resolve().parent.parent
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    module_name, class_name = config["model"]["class_path"].rsplit(".", 1)
    method_class = getattr(importlib.import_module(module_name), class_name)
    method = method_class.load_from_checkpoint(checkpoint_path, map_location=device, weights_only=True)
    datamodule = ImageDataModule(**config["data"])
    datamodule.data = data
    datamodule.setup_for_run(run_dir)
    return config, method, datamodule
