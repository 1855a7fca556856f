"""`SSLProbeCLI`: LightningCLI with one directory per run, its loggers, checkpoints and probes wired into it."""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Literal

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from sslprobe.callbacks import PROBE_CALLBACKS, ExactResume
from sslprobe.cli.errors import ParseError, check_config_file, condense_parse_error, config_files
from sslprobe.cli.failures import close_reports, fail_run, prepare_reports
from sslprobe.cli.runs import (
    DEFAULT_ROOT,
    _as_list,
    check_checkpoint,
    check_data,
    check_devices,
    check_model_fits_data,
    check_writable,
    default_experiment,
    keep_metrics,
    latest_version,
    main_process,
    shared_version,
    wandb_logged_in,
    wandb_run_id,
)
from sslprobe.data.datamodule import ImageDataModule
from sslprobe.methods import SSLMethod
from sslprobe.nn.backbones import BACKBONES
from sslprobe.options import check_options, plain_numbers
from sslprobe.runtime import native_bfloat16, resolve_precision

PROBES = PROBE_CALLBACKS  # config key -> probe callback class, every registered probe


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


class _DropSeedMessage(logging.Filter):
    """Drops Lightning's "Seed set to N" record (on every rank; the seed is in config.yaml and W&B)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Seed set to " not in record.getMessage()


def quiet_seed_message() -> None:
    """Lightning seeds as usual (``seed_everything``: an int, true or false; ``workers=True``; the
    seed written back to the config), without its "Seed set to N" line or its warning "No seed
    found, seed set to 0" for ``seed_everything: true`` with no ``PL_GLOBAL_SEED``."""
    logger = logging.getLogger("lightning.fabric.utilities.seed")  # the logger of `seed_everything`
    if not any(isinstance(f, _DropSeedMessage) for f in logger.filters):
        logger.addFilter(_DropSeedMessage())
    warnings.filterwarnings("ignore", message="No seed found, seed set to")


class SSLProbeCLI(LightningCLI):
    """LightningCLI that resolves the run directory and wires loggers and checkpoints into it."""

    def __init__(self, *args, **kwargs):
        quiet_seed_message()
        self.option_parsers: list[LightningArgumentParser] = []  # for "did you mean" on a parse error
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
        super().__init__(SSLMethod, ImageDataModule, *args, subclass_mode_model=True, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        self.option_parsers.append(parser)
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
        # The network is built for the data's image size (ResNet-18's stem, ViT's positions, checks).
        parser.link_arguments("data.image_size", "model.init_args.image_size", apply_on="parse")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        for key, probe in PROBES.items():
            parser.add_argument(f"--probes.{key}", type=probe | None, default=None,
                                help=f"{probe.__name__} callback (see callbacks/{key}.yaml)")
        parser.set_defaults({
            "checkpoint.save_last": True,
            "checkpoint.save_top_k": 1,
            "checkpoint.filename": "epoch{epoch:03d}-step{step:06d}",
            "checkpoint.auto_insert_metric_name": False,
            # One last.ckpt per run: a resume overwrites it (the exit on a signal writes it, not this
            # callback, which would otherwise add last-v1.ckpt and leave last.ckpt at the interrupted step).
            "checkpoint.enable_version_counter": False,
            "trainer.default_root_dir": DEFAULT_ROOT,
        })

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Parse into ``self.config``; a rejected argument raises `ParseError` (one line, with a suggestion).

        ``--print_config`` prints the config this run will use and exits. Otherwise ``ckpt_path`` is
        held back from the config until `before_instantiate_classes`: right after parsing,
        LightningCLI re-reads a checkpoint's hyperparameters into the model config (with no option
        to turn that off), which would hide a checkpoint of another model from `check_checkpoint`;
        here such a checkpoint is an error, not a silent change of model.
        """
        argv = list(sys.argv[1:] if args is None else args) if isinstance(args, (list, tuple, type(None))) else None
        for path in config_files(argv or []):
            check_config_file(path)
        printing = [a for a in argv or [] if a == "--print_config" or a.startswith("--print_config=")]
        if printing:
            self.print_resolved_config(parser, args, argv, printing)
        self._parse(parser, args)
        config = self.config[self.config.subcommand] if self.config.get("subcommand") else self.config
        self.requested_ckpt_path = config.get("ckpt_path")
        if self.requested_ckpt_path is not None:
            config.ckpt_path = None

    def _parse(self, parser: LightningArgumentParser, args) -> None:
        try:
            super().parse_arguments(parser, args)
        except argparse.ArgumentError as error:
            keys = [key for sub in self.option_parsers for key in sub.get_defaults().keys()]
            raise ParseError(condense_parse_error(error, keys)) from error
        plain_numbers(self.config)  # the ranges are checked; what goes on (config.yaml, W&B, checkpoints) is plain
        subcommand = self.config.get("subcommand")
        check_backbone_options((self.config[subcommand] if subcommand else self.config).get("model"))

    def print_resolved_config(
        self, parser: LightningArgumentParser, args, argv: list[str], printing: list[str]
    ) -> None:
        """Print the config of ``argv`` without its ``printing`` flags, with the run directory, loggers
        and checkpoint directory resolved as `before_instantiate_classes` does (nothing is created
        or checked); exit 0."""
        kept = [a for a in argv if a not in printing]
        if args is None:  # LightningCLI reads sys.argv itself (and warns when given both)
            saved_argv = sys.argv[:]
            sys.argv[1:] = kept
            try:
                self._parse(parser, None)
            finally:
                sys.argv[:] = saved_argv
        else:
            self._parse(parser, kept)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        self.resolve_run(config)
        choose_precision(config, fitting=False)
        target = self._subcommand_parsers[subcommand] if subcommand else parser
        flags = {flag for a in printing for flag in a.partition("=")[2].split(",") if flag}
        sys.stdout.write(target.dump(config, skip_none=False, skip_default="skip_default" in flags, skip_check=True))
        sys.exit(0)

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
        if self.requested_ckpt_path is not None:
            config.ckpt_path = self.requested_ckpt_path  # held back in `parse_arguments`
        root = Path(config.trainer.default_root_dir or DEFAULT_ROOT)
        self.resolve_run(config)
        # The outermost directory this run will create (None: its directory exists), removed if it fails.
        self.first_new_dir = next((path for path in (root, root / config.run.experiment, self.run_dir)
                                   if not path.exists()), None)
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
        if config.get("ckpt_path"):
            keep_metrics(self.run_dir)

    def _run_subcommand(self, subcommand: str) -> None:
        """Run ``subcommand``; a failure from here on is one line from the first process (`fail_run`)."""
        reports = prepare_reports() if main_process() else None
        try:
            super()._run_subcommand(subcommand)
        except Exception as error:
            raise fail_run(error, self.trainer, self.run_dir, getattr(self, "first_new_dir", None)) from error
        finally:
            close_reports(reports)

    def instantiate_trainer(self, **kwargs):
        # Data problems surface here, before the Trainer, its loggers and the run directory exist.
        if self.subcommand is not None and isinstance(self.datamodule, ImageDataModule):
            check_data(self.datamodule, self.run_dir)
            check_model_fits_data(self.model, self.datamodule)
        configured = _as_list(self._get(self.config_init, "trainer").get("callbacks"))  # one callback: a list of one
        probes = [p for p in vars(self._get(self.config_init, "probes")).values() if p is not None]
        trainer = super().instantiate_trainer(
            default_root_dir=str(self.run_dir), callbacks=[*configured, *probes], **kwargs
        )
        if self.subcommand is not None and main_process():
            for line in device_lines(trainer, getattr(self, "precision_notice", None)):
                print(line, file=sys.stderr)
        for logger in trainer.loggers:
            # WandbLogger passes anonymous=None, which wandb >= 0.19 warns about on every run.
            init = getattr(logger, "_wandb_init", None)
            if isinstance(init, dict) and init.get("anonymous") is None:
                init.pop("anonymous", None)
        return trainer


def check_backbone_options(model_config) -> None:
    """A named backbone's ``backbone_kwargs`` against its factory's annotated ranges, as a parse error.

    The parser sees ``backbone_kwargs`` as a plain mapping; the ranges are those `check_options`
    enforces when the backbone is built, checked here so that they fail as every other option does.
    """
    init_args = (model_config.get("init_args") if model_config is not None else None) or {}
    name, kwargs = init_args.get("backbone"), init_args.get("backbone_kwargs")
    if isinstance(name, str) and name in BACKBONES and isinstance(kwargs, dict):
        try:
            check_options(BACKBONES[name], dict(kwargs), owner="model.init_args.backbone_kwargs")
        except ValueError as error:
            raise ParseError(str(error)) from None


def device_lines(trainer, precision_notice: str | None) -> list[str]:
    """What the run runs on, in one line (instead of the Trainer's GPU/TPU/HPU inventory and AMP notice).

    ``run.precision auto``'s choice is folded into it; a hint from `choose_precision` follows it.
    """
    count, kind = trainer.num_devices, type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
    where = f"{count} {kind} device{'s' if count != 1 else ''}"
    if trainer.num_nodes > 1:
        where += f" on each of {trainer.num_nodes} nodes"
    auto = "sslprobe: run.precision auto: "
    if precision_notice and precision_notice.startswith(auto):
        return [f"sslprobe: {where}, {precision_notice.removeprefix('sslprobe: ')}"]
    return [f"sslprobe: {where}, precision {trainer.precision}", *([precision_notice] if precision_notice else [])]


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
