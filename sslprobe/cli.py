"""``python -m sslprobe fit|validate|test --config FILE``: LightningCLI with one directory per run.

Every run lives in ``<trainer.default_root_dir>/<run.experiment>/<run.version>/``:

    config.yaml       the resolved config
    subset.json       the training subset (indices and per-class counts)
    checkpoints/      last.ckpt and periodic checkpoints (a fixed path, whatever the logger)
    probes/           raw arrays and figures of the probe callbacks
    metrics.csv, wandb/   logger files

The CLI points the Trainer's ``default_root_dir`` at that directory, so callbacks and the
datamodule find it as ``trainer.default_root_dir``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from sslprobe.callbacks import PROBE_CALLBACKS, ExactResume, Preempted
from sslprobe.data.cifar import load_cifar10
from sslprobe.data.datamodule import CIFAR10DataModule
from sslprobe.methods import METHODS, SSLMethod
from sslprobe.runtime import native_bfloat16, resolve_precision, tune_host_allocator

DEFAULT_ROOT = "runs"
PROBES = PROBE_CALLBACKS  # config key -> probe callback class, every registered probe


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
    """``<method>_<backbone>_<imbalance>``, e.g. ``simclr_resnet18_full``."""
    model = config.model
    method = str(model.class_path).rsplit(".", 1)[-1].lower()
    backbone = model.init_args.get("backbone", "resnet18")
    return f"{method}_{backbone}_{config.data.imbalance}"


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


def check_data(datamodule: CIFAR10DataModule, run_dir: Path) -> None:
    """Load CIFAR-10 and draw the training subset now, so bad data fails before any logger starts.

    Nothing is written: ``subset.json`` is saved later by the datamodule's ``setup``.
    """
    if datamodule.cifar is None:
        datamodule.cifar = load_cifar10(datamodule.root, datamodule.download)
    datamodule.resolve_subset(run_dir, is_writer=False)


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


class RunConfigCallback(SaveConfigCallback):
    """Saves the resolved config as ``<run dir>/config.yaml`` (a resumed run keeps its first one).

    A new run never meets an existing config.yaml: `SSLProbeCLI` refuses such a directory earlier.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        path = Path(trainer.default_root_dir) / self.config_filename
        if trainer.is_global_zero and not self.already_saved and not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(path), skip_none=False, multifile=False)
        if trainer.is_global_zero and not self.already_saved:
            for logger in trainer.loggers:
                if type(logger).__name__ == "WandbLogger":
                    record_run_files(logger.experiment, self.config.as_dict(), Path(trainer.default_root_dir))
        self.already_saved = True


def record_run_files(run, config: dict, run_dir: Path) -> None:
    """Put the whole resolved config into a W&B run's config and config.yaml, subset.json into its files."""
    run.config.update({key: value for key, value in config.items() if key != "config"}, allow_val_change=True)
    for name in ("config.yaml", "subset.json"):
        if (run_dir / name).is_file():
            run.save(str(run_dir / name), base_path=str(run_dir), policy="now")


class SSLProbeCLI(LightningCLI):
    """LightningCLI that resolves the run directory and wires loggers and checkpoints into it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("save_config_callback", RunConfigCallback)
        # One way to choose the optimizer: model.init_args.optimizer (see `SSLMethod`), not a top-level key.
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("trainer_defaults", {"callbacks": [ExactResume()]})
        # Parse errors raise (and become one line in `main`) instead of printing the whole usage.
        quiet = {"exit_on_error": False, "allow_abbrev": False}
        per_subcommand = {name: dict(quiet) for name in self.subcommands()}
        description = ("Subcommands fit, validate, test, predict (Lightning) and probe (the probes on a saved "
                       "checkpoint: python -m sslprobe probe --help).")
        kwargs.setdefault("parser_kwargs", {**quiet, "prog": "python -m sslprobe", "description": description,
                                            **per_subcommand})
        super().__init__(SSLMethod, CIFAR10DataModule, *args, subclass_mode_model=True, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--run.experiment", type=str | None, default=None,
                            help="experiment name (default: <method>_<backbone>_<imbalance>)")
        parser.add_argument("--run.version", type=str | None, default=None,
                            help="run name inside the experiment (default: next version_<n>; "
                                 "with --ckpt_path last: the latest run)")
        parser.add_argument("--run.precision", type=Literal["auto"] | None, default=None,
                            help="auto: bf16-mixed + channels-last where the hardware runs bfloat16 natively "
                                 "(CPU with AVX512-BF16 or AMX, CUDA compute capability >= 8.0), 32-true "
                                 "elsewhere; the choice is written to trainer.precision and "
                                 "model.init_args.channels_last of the run's config.yaml")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        for key, probe in PROBES.items():
            parser.add_argument(f"--probes.{key}", type=probe | None, default=None,
                                help=f"{probe.__name__} callback (see callbacks/{key}.yaml)")
        parser.set_defaults({
            "checkpoint.save_last": True,
            "checkpoint.save_top_k": 1,
            "checkpoint.filename": "epoch{epoch:03d}-step{step:06d}",
            "checkpoint.auto_insert_metric_name": False,
            "trainer.default_root_dir": DEFAULT_ROOT,
        })

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        KNOWN_KEYS[:] = [key for sub in self._subcommand_parsers.values() for key in sub.get_defaults().keys()]
        argv = list(sys.argv[1:] if args is None else args) if isinstance(args, (list, tuple, type(None))) else None
        printing = [a for a in argv or [] if a == "--print_config" or a.startswith("--print_config=")]
        if not printing:
            super().parse_arguments(parser, args)
            return
        # --print_config shows the config this run will use: run directory, loggers and checkpoint
        # directory resolved as `before_instantiate_classes` does (nothing is created or checked).
        kept = [a for a in argv if a not in printing]
        if args is None:  # LightningCLI reads sys.argv itself (and warns when given both)
            saved_argv = sys.argv[:]
            sys.argv[1:] = kept
            try:
                super().parse_arguments(parser, None)
            finally:
                sys.argv[:] = saved_argv
        else:
            super().parse_arguments(parser, kept)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        self.resolve_run(config)
        choose_precision(config, fitting=False)
        target = self._subcommand_parsers[subcommand] if subcommand else parser
        flags = {flag for a in printing for flag in a.partition("=")[2].split(",") if flag}
        sys.stdout.write(target.dump(config, skip_none=False, skip_default="skip_default" in flags, skip_check=True))
        sys.exit(0)

    def _set_seed(self) -> None:
        """Lightning's seeding without its "Seed set to" line (the seed is in config.yaml and W&B)."""
        from lightning.fabric.utilities.seed import seed_everything

        key = f"{self.subcommand}.seed_everything" if self.subcommand else "seed_everything"
        seed = self.config.get(key)
        if seed is False:
            return
        self.config[key] = seed_everything(None if seed is True else seed, workers=True, verbose=False)

    def _parse_ckpt_path(self) -> None:
        """Checkpoints are validated in `before_instantiate_classes`; the config is never rewritten
        from a checkpoint's hyperparameters (a mismatch is an error instead)."""

    def resolve_run(self, config) -> Path:
        """Fill in the run's experiment, version, checkpoint path, checkpoint directory and logger
        settings in ``config``; returns the run directory. Creates and changes no file."""
        root = Path(config.trainer.default_root_dir or DEFAULT_ROOT)
        experiment = config.run.experiment or default_experiment(config)
        config.run.experiment = experiment
        ckpt_path = config.get("ckpt_path")
        version = config.run.version
        if version is None and ckpt_path == "last":
            version = latest_version(root / experiment)
            if version is None:
                raise FileNotFoundError(
                    f"--ckpt_path last: no run of experiment {experiment!r} under {root} has checkpoints/last.ckpt"
                )
        version = version or shared_version(root / experiment)
        config.run.version = version
        self.run_dir = root / experiment / version
        if ckpt_path == "last":
            last = self.run_dir / "checkpoints" / "last.ckpt"
            if not last.is_file():
                raise FileNotFoundError(f"--ckpt_path last: {last} does not exist")
            config.ckpt_path = str(last)
        config.checkpoint.dirpath = str(self.run_dir / "checkpoints")
        if "weights_only" in config and config.weights_only is None:
            config.weights_only = True  # Lightning then loads --ckpt_path as `load_checkpoint` does
        online = wandb_logged_in()
        for logger in _as_list(config.trainer.logger):
            kind = str(logger.class_path).rsplit(".", 1)[-1]
            if kind == "WandbLogger":
                logger.init_args.save_dir = str(self.run_dir)
                logger.init_args.name = f"{experiment}/{version}"
                logger.init_args.id = wandb_run_id(experiment, version)
                logger.init_args.offline = logger.init_args.get("offline") or not online
                logger.init_args.resume = logger.init_args.get("resume") or "allow"
            elif kind in ("CSVLogger", "TensorBoardLogger"):
                logger.init_args.save_dir = str(root)
                logger.init_args.name = experiment
                logger.init_args.version = version
        return self.run_dir

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = Path(config.trainer.default_root_dir or DEFAULT_ROOT)
        self.resolve_run(config)
        config_file = self.run_dir / self.save_config_kwargs.get("config_filename", "config.yaml")
        if self.save_config_callback and config_file.is_file() and not config.get("ckpt_path"):
            # Refuse before any logger opens the directory (CSVLogger deletes an existing metrics.csv).
            raise FileExistsError(
                f"{config_file} exists: this run directory belongs to another run; choose another "
                "--run.version or resume it with --ckpt_path last"
            )
        if config.get("ckpt_path"):
            check_checkpoint(Path(config.ckpt_path), config.model)
        check_writable(root)
        check_devices(config.trainer)
        self.precision_notice = choose_precision(config, fitting=self.subcommand == "fit")
        metrics = self.run_dir / "metrics.csv"
        if config.get("ckpt_path") and metrics.is_file():
            # The CSV logger starts a fresh metrics.csv; keep the interrupted run's rows beside it.
            metrics.rename(self.run_dir / f"metrics.until_{time.strftime('%Y%m%d-%H%M%S')}.csv")

    def instantiate_trainer(self, **kwargs):
        # Data problems surface here, before the Trainer, its loggers and the run directory exist.
        if self.subcommand is not None and isinstance(self.datamodule, CIFAR10DataModule):
            check_data(self.datamodule, self.run_dir)
        if getattr(self, "precision_notice", None) and main_process():
            print(self.precision_notice, file=sys.stderr)
        configured = self._get(self.config_init, "trainer").get("callbacks") or []
        probes = [p for p in vars(self._get(self.config_init, "probes")).values() if p is not None]
        trainer = super().instantiate_trainer(
            default_root_dir=str(self.run_dir), callbacks=[*configured, *probes], **kwargs
        )
        for logger in trainer.loggers:
            # WandbLogger passes anonymous=None, which wandb >= 0.19 warns about on every run.
            init = getattr(logger, "_wandb_init", None)
            if isinstance(init, dict) and init.get("anonymous") is None:
                init.pop("anonymous", None)
        return trainer


def wandb_run_id(experiment: str, version: str) -> str:
    """The W&B run id of a run directory (``fit``, its resumes and ``probe`` all log to it)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{experiment}-{version}")


def main_process() -> bool:
    """Whether this is the first process of a launch (hints are printed once, not per rank)."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"))


def choose_precision(config, fitting: bool) -> str | None:
    """Resolve ``run.precision: auto`` into the config (so config.yaml records the choice).

    Returns the line to print once the run is known to start (after the data checks): what
    ``auto`` chose, or, for a float32 ``fit`` on hardware with native bfloat16, what the switch
    would give (the config itself is never changed then: a config means the same numerics on
    every machine). None when there is nothing to say.
    """
    accelerator = config.trainer.get("accelerator")
    if config.run.get("precision") == "auto":
        precision, channels_last, why = resolve_precision(accelerator)
        config.trainer.precision = precision
        config.model.init_args.channels_last = channels_last
        layout = " + channels-last" if channels_last else ""
        return f"sslprobe: run.precision auto: {precision}{layout} ({why})"
    precision = str(config.trainer.get("precision") or "32-true")
    native = native_bfloat16(accelerator)
    if fitting and native and precision in ("32", "32-true"):
        return (f"sslprobe: hint: bfloat16 is native here ({native}): --run.precision auto "
                "(bf16-mixed + channels-last) trains faster (README: Performance, precision)")
    return None


KNOWN_KEYS: list[str] = []  # option names of the last parser built, for "did you mean" suggestions


def checkpoint_probes() -> dict[str, str]:
    """``probe --what`` names (the probes' ``name``) -> config keys, of the probes that run on a checkpoint."""
    return {probe.name: key for key, probe in PROBES.items() if probe.from_checkpoint}


def build_probe(key: str, section: dict | None):
    """A probe callback from a saved config's ``probes.<key>`` section (defaults if absent)."""
    init_args = (section or {}).get("init_args", section or {}) if isinstance(section, dict) else {}
    init_args = {k: v for k, v in init_args.items() if k != "class_path"}
    return PROBES[key](**init_args)


def probe_checkpoint(argv: list[str]) -> None:
    """``python -m sslprobe probe --ckpt_path RUN/checkpoints/last.ckpt [--what ...]``.

    Runs the probes on a saved checkpoint, without training, and writes their files into that
    run's ``probes/`` directory. Settings come from the run's ``config.yaml`` (its ``probes``
    section where present, else the probes' defaults).
    """
    import torch
    import yaml

    parser = argparse.ArgumentParser(prog="python -m sslprobe probe", description=probe_checkpoint.__doc__)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint inside RUN/checkpoints/")
    parser.add_argument("--what", default="spectrum,landscape,linear",
                        help=f"comma-separated subset of {','.join(checkpoint_probes())}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    wanted = [w.strip() for w in args.what.split(",") if w.strip()]
    choices = checkpoint_probes()
    unknown = [w for w in wanted if w not in choices]
    if unknown or not wanted:
        raise ValueError(f"--what {args.what!r}: unknown probe(s) {unknown}; valid: {', '.join(choices)}")
    checkpoint_path = Path(args.ckpt_path)
    if not checkpoint_path.is_file():
        raise FileNotFoundError(f"--ckpt_path {checkpoint_path} does not exist")
    run_dir = checkpoint_path.resolve().parent.parent
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: --ckpt_path must lie in <run dir>/checkpoints/")
    config = yaml.safe_load(config_path.read_text())
    module_name, class_name = config["model"]["class_path"].rsplit(".", 1)
    method_class = getattr(importlib.import_module(module_name), class_name)
    checkpoint = load_checkpoint(checkpoint_path)
    method = method_class.load_from_checkpoint(checkpoint_path, map_location=args.device, weights_only=True)
    datamodule = CIFAR10DataModule(**config["data"])
    datamodule.setup_for_run(run_dir)
    epoch = int(checkpoint.get("epoch", 0)) + 1  # counted from 1: the epoch the checkpoint ends or is in
    step = int(checkpoint.get("global_step", 0))
    # The probes log where `fit` logged: the run's W&B run (same id) and its metrics.csv.
    log = SimpleNamespace(loggers=[AppendedCSV(run_dir / "metrics.csv"), *run_wandb_loggers(config)],
                          global_step=step, datamodule=datamodule, is_global_zero=True)
    for name in wanted:
        key = choices[name]
        probe = build_probe(key, (config.get("probes") or {}).get(key))
        if getattr(probe, "random_init_seed", 0) is None and isinstance(config.get("seed_everything"), int):
            probe.random_init_seed = config["seed_everything"]  # the run's seed, as during fit
        saved = next((state for state_key, state in checkpoint.get("callbacks", {}).items()
                      if state_key.startswith(type(probe).__name__)), None)
        if saved is not None:
            probe.load_state_dict(saved)
        start = time.perf_counter()
        results = probe.measure_or_explain(method, datamodule, run_dir, epoch)
        results[f"{probe.name}/seconds"] = time.perf_counter() - start
        summary = ", ".join(f"{k.split('/', 1)[1]}={v:.4g}" for k, v in results.items()
                            if isinstance(v, float) and not k.endswith("/seconds"))
        probe.log_results(log, results, epoch - 1)  # Lightning's 0-based epoch column
        print(f"{name} (epoch {epoch}): {summary}")
    print(f"wrote {run_dir / 'probes'}; logged to {', '.join(describe_logger(lg) for lg in log.loggers)}")
    for logger in log.loggers:
        if hasattr(logger, "experiment"):
            logger.experiment.finish()  # the run's files are complete when `probe` returns


class AppendedCSV:
    """Adds rows to an existing ``metrics.csv`` (new columns extend the header; old rows are kept)."""

    def __init__(self, path: Path):
        self.path = path

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        import csv

        rows, fields = [], []
        if self.path.is_file():
            with open(self.path, newline="") as handle:
                reader = csv.DictReader(handle)
                rows, fields = list(reader), list(reader.fieldnames or [])
        row = {**{k: v for k, v in metrics.items() if isinstance(v, (int, float))}, "step": step}
        fields += [key for key in row if key not in fields]
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows([*rows, row])


def run_wandb_loggers(config: dict) -> list:
    """A `WandbLogger` continuing each W&B run the run's config.yaml names (same id, resumed)."""
    from lightning.pytorch.loggers import WandbLogger

    loggers = []
    for entry in _as_list((config.get("trainer") or {}).get("logger")):
        if isinstance(entry, dict) and str(entry.get("class_path", "")).endswith("WandbLogger"):
            init_args = {k: v for k, v in (entry.get("init_args") or {}).items() if v is not None}
            init_args["offline"] = bool(init_args.get("offline")) or not wandb_logged_in()
            init_args["resume"] = "allow"
            init_args.pop("anonymous", None)
            logger = WandbLogger(**init_args)
            logger._wandb_init.pop("anonymous", None)
            loggers.append(logger)
    return loggers


def describe_logger(logger) -> str:
    if isinstance(logger, AppendedCSV):
        return str(logger.path)
    mode = "offline" if getattr(logger, "_offline", False) else "online"
    return f"W&B run {logger.experiment.id} ({mode}, {logger.experiment.dir})"


SUBCOMMANDS = ("fit", "validate", "test", "predict", "probe")


class UsageError(ValueError):
    """No subcommand, or one that does not exist."""


def check_subcommand(argv: list[str]) -> None:
    """The first argument is one of `SUBCOMMANDS` (or an option such as --help), else a `UsageError`."""
    choices = ", ".join(SUBCOMMANDS)
    if not argv:
        raise UsageError(f"give a subcommand: python -m sslprobe {{{choices.replace(', ', ',')}}} ... "
                         "(probe measures a checkpoint; add --help after any of them for its options)")
    if not argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
        close = difflib.get_close_matches(argv[0], SUBCOMMANDS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown subcommand {argv[0]!r}{hint} (choose from {choices})")


class _DropLines(logging.Filter):
    """Drops log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


NOISE_PREFIXES = (
    "💡 Tip:",  # Lightning's advertisements for litlogger / litmodels
    "Loading `train_dataloader` to estimate number of stepping batches",  # the LR schedule's length
)


def quiet_known_noise() -> None:
    """Silence what every run printed and no user can act on.

    - Lightning's "💡 Tip" lines advertising litlogger and litmodels, and its note that it reads
      the training loader to size the learning-rate schedule;
    - the CSV logger's warning that the run directory exists (the CLI creates it first), and the
      checkpoint callback's that checkpoints/ is not empty (a resume continues in it);
    - torch >= 2.10's deprecation of ``LeafSpec`` raised from inside Lightning's pytree helper.
    """
    warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")  # resume
    warnings.filterwarnings("ignore", message=r"(?s).*LeafSpec", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"(?s).*LeafSpec", category=DeprecationWarning)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logger = logging.getLogger(name)
        for handler in [logger, *logger.handlers]:
            if not any(isinstance(f, _DropLines) for f in handler.filters):
                handler.addFilter(_DropLines(NOISE_PREFIXES))


def run_pointer(run_dir: Path, trainer) -> str:
    """The closing line of a ``fit``: where the run is and how to look at it."""
    parts = [f"run: {run_dir}", f"metrics: {run_dir / 'metrics.csv'}"]
    if (run_dir / "probes").is_dir():
        parts.append(f"probes: {run_dir / 'probes'}/")
    offline = [logger for logger in trainer.loggers
               if type(logger).__name__ == "WandbLogger" and getattr(logger, "_offline", False)]
    if offline and (run_dir / "wandb").is_dir():
        parts.append(f"W&B (offline): wandb sync {run_dir / 'wandb'}/offline-run-*")
    return " | ".join(parts)


def main(args: list[str] | None = None) -> None:
    """Entry point: any error becomes one line on stderr and exit code 1.

    ``SSLPROBE_DEBUG=1`` shows the full traceback instead.
    """
    os.environ.setdefault("WANDB_SILENT", "true")
    tune_host_allocator()
    quiet_known_noise()
    if not wandb_logged_in():
        os.environ.setdefault("WANDB_MODE", "offline")
    argv = sys.argv[1:] if args is None else list(args)
    try:
        check_subcommand(argv)
        if argv[:1] == ["probe"]:
            probe_checkpoint(argv[1:])
        else:
            cli = SSLProbeCLI(args=args)
            if cli.subcommand == "fit" and cli.trainer.is_global_zero:
                print(run_pointer(cli.run_dir, cli.trainer))
    except Preempted as stop:
        print(f"sslprobe: {stop}", file=sys.stderr)
        sys.exit(stop.code)
    except Exception as error:
        if os.environ.get("SSLPROBE_DEBUG"):
            raise
        print(f"sslprobe: error: {error_line(error, KNOWN_KEYS)}", file=sys.stderr)
        sys.exit(2 if isinstance(error, (argparse.ArgumentError, UsageError)) else 1)
    finally:
        finish_wandb()


_STRUCTURE = ("Parser key", "Does not validate", "Subtypes:", "Errors:", "Given value",
              "- Expected a <class 'NoneType'>", "- Problem with given class_path")
_UNKNOWN_OPTION = re.compile(
    r"unrecognized arguments: --(?P<a>\S+)|Option '(?P<b>[^']+)' is not accepted|"
    r"does not accept option '(?P<c>[^']+)'|Key '(?P<d>[^']+)' is not expected"
)


def _option_names(cls: type) -> list[str]:
    """Constructor parameters of ``cls`` and its bases (what ``init_args`` accepts)."""
    names = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names += [n for n in inspect.signature(klass.__init__).parameters if n not in ("self", "args", "kwargs")]
    return names


def explain_parse_error(text: str, known_keys: list[str]) -> str:
    """One line from jsonargparse's nested error report: the key, what was wrong, a suggestion."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    keys = re.findall(r'Parser key "([^"]+)"', text)
    class_path = re.search(r"class_path '([^']+)'", text)
    details = [line.lstrip("- ") for line in lines if not line.startswith(_STRUCTURE)]
    detail = details[0] if details else lines[0]
    unknown = _UNKNOWN_OPTION.search(text)
    if unknown:
        name = next(group for group in unknown.groups() if group)
        candidates = list(known_keys)
        if class_path:
            try:
                module, _, attr = class_path.group(1).rpartition(".")
                candidates = _option_names(getattr(importlib.import_module(module), attr))
            except (ImportError, AttributeError, ValueError):
                pass
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        where = f"{'.'.join(keys)}: " if keys and not name.startswith(keys[0]) else ""
        return f"{where}unknown option {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
    literal = re.match(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)", detail)
    if literal:
        detail = f"expected one of {literal.group(1)}, got {literal.group(2)!r}"
    if "has no attribute" in detail and class_path:
        methods = ", ".join("sslprobe.methods." + m for m in METHODS)
        detail = f"no class {class_path.group(1)!r}; methods: {methods}"
    return f"{'.'.join(keys)}: {detail}" if keys else detail


def error_line(error: BaseException, known_keys: list[str] | None = None) -> str:
    """The line of ``error`` that names the problem (parse errors are condensed to one)."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    if isinstance(error, argparse.ArgumentError) or text.startswith(
        ("Parser key", "unrecognized", "Subcommand", "Does not validate")
    ):
        return explain_parse_error(text, known_keys or [])
    return text.splitlines()[0]


def finish_wandb() -> None:
    """Close the W&B run of this call, so a next in-process call starts its own run."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
