"""``python -m sslprobe probe --backbone ...``: the probes on a model trained anywhere, in a run directory of its own.

The run lands in ``<root>/probe_<model>/version_<n>/`` (``config.yaml`` with the model, the weights
file's sha256, the data and the probes; ``probes/``; ``metrics.csv``; ``wandb/``, offline unless
logged in), beside sslprobe's own runs, so ``python -m sslprobe compare`` can set them side by side.
Everything is checked (arguments, architecture, weights, data) before the directory is created.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from jsonargparse import ActionConfigFile, ArgumentParser
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt
from torch import nn

from sslprobe.callbacks import PROBE_CALLBACKS
from sslprobe.cli.probe import AppendedCSV, describe_logger, summarize
from sslprobe.cli.runs import DEFAULT_ROOT, check_writable, next_version, wandb_logged_in, wandb_run_id
from sslprobe.data import ImageDataModule
from sslprobe.nn.foreign import (
    BACKBONE_PREFIXES,
    PROJECTOR_PREFIXES,
    build_architecture,
    build_head,
    describe_backbone_choices,
    file_sha256,
    load_weights,
    read_state_dict,
)
from sslprobe.probes.api import PROBE_NAMES, probe

DATAMODULE = ImageDataModule  # the datamodule `fit` uses: its options are ``--data.*`` here too
DEFAULT_WHAT = "spectrum,linear,knn"


def probe_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m sslprobe probe", exit_on_error=False,
        description="The probes on a model trained anywhere (--backbone, --weights), in a run directory of "
                    "its own; with --ckpt_path RUN/checkpoints/last.ckpt instead, on an sslprobe run's checkpoint.")
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options")
    parser.add_argument("--settings_from", type=str | None, default=None,
                        help="a run directory whose --data.* and --probes.* settings become the defaults (so "
                             "`compare` can set this model beside it); options given here still override them")
    parser.add_argument("--backbone", type=str, required=True, help=describe_backbone_choices())
    parser.add_argument("--backbone_kwargs", type=dict | None, default=None,
                        help="keyword arguments of the architecture (torchvision ResNets: cifar_stem: true)")
    parser.add_argument("--weights", type=str | None, default=None,
                        help="state_dict, Lightning checkpoint, or a dict holding one under state_dict / model "
                             "(read without running code); none: random weights")
    parser.add_argument("--weights_prefix", type=str | None, default=None,
                        help=f"key prefix of the backbone (default: the best-matching chain of {BACKBONE_PREFIXES})")
    parser.add_argument("--projector", type=str | None, default=None,
                        help="mlp, linear or a class_path; with --objective it enables landscape and theory")
    parser.add_argument("--projector_kwargs", type=dict | None, default=None,
                        help="mlp / linear: hidden_dim, output_dim, batch_norm")
    parser.add_argument("--projector_prefix", type=str | None, default=None,
                        help=f"key prefix of the projector (default: the best-matching chain of {PROJECTOR_PREFIXES})")
    parser.add_argument("--objective", type=str | None, default=None,
                        help="a loss class of sslprobe.losses, e.g. NTXentLoss")
    parser.add_argument("--objective_kwargs", type=dict | None, default=None, help="its arguments")
    parser.add_argument("--weight_decay", type=NonNegativeFloat, default=0.0,
                        help="the objective's L2 coefficient (landscape / theory include_weight_decay)")
    parser.add_argument("--what", type=str, default=DEFAULT_WHAT,
                        help=f"comma-separated subset of {','.join(PROBE_NAMES)}")
    parser.add_argument("--seed", type=NonNegativeInt, default=0, help="seed of the random-init baseline")
    parser.add_argument("--device", type=str, default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--root", type=str, default=DEFAULT_ROOT, help="folder of the runs")
    parser.add_argument("--run.experiment", type=str | None, default=None, help="default: probe_<model>")
    parser.add_argument("--run.version", type=str | None, default=None, help="default: the next version_<n>")
    parser.add_argument("--wandb_project", type=str | None, default="sslprobe", help="null: no W&B run")
    parser.add_class_arguments(DATAMODULE, "data")
    for key, cls in PROBE_CALLBACKS.items():
        parser.add_class_arguments(cls, f"probes.{key}", skip={"every_n_epochs"})
    return parser


def model_name(spec: str) -> str:
    """``torchvision:resnet18`` -> ``torchvision_resnet18``; a class_path -> its class name, lower case."""
    if "." in spec and ":" not in spec:
        spec = spec.rsplit(".", 1)[-1]
    return re.sub(r"[^A-Za-z0-9]+", "_", spec).strip("_").lower()


def build_objective(name: str, kwargs: dict | None) -> nn.Module:
    import sslprobe.losses as losses

    choices = [n for n in losses.__all__ if isinstance(getattr(losses, n), type)
               and issubclass(getattr(losses, n), nn.Module)]
    short = name.rsplit(".", 1)[-1]
    if short not in choices:
        raise ValueError(f"--objective {name!r} is not a loss of sslprobe.losses; choose from {', '.join(choices)}")
    try:
        return getattr(losses, short)(**(kwargs or {}))
    except TypeError as error:
        raise ValueError(f"--objective {short}: its arguments do not fit ({error})") from None


def probe_model(argv: list[str]) -> None:
    """Probe a model trained anywhere (module docstring); every check runs before anything is written."""
    parser = probe_parser()
    source = settings_source(argv)
    if source is not None:
        parser.set_defaults(run_settings(source, parser))
    config = parser.parse_args(argv)  # a rejected value: one line from `main`
    wanted = [w.strip() for w in config.what.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in PROBE_NAMES]
    if unknown or not wanted:
        raise ValueError(f"--what {config.what!r}: unknown probe(s) {unknown}; valid: {', '.join(PROBE_NAMES)}")
    architecture = build_architecture(config.backbone, config.backbone_kwargs)
    projector = (build_head(config.projector, architecture.backbone.feature_dim, config.projector_kwargs)
                 if config.projector else None)
    objective = build_objective(config.objective, config.objective_kwargs) if config.objective else None
    model_record = {"backbone": config.backbone, "backbone_kwargs": config.backbone_kwargs,
                    "weights": None, "weights_sha256": None, "projector": config.projector,
                    "projector_kwargs": config.projector_kwargs, "objective": config.objective,
                    "objective_kwargs": config.objective_kwargs, "weight_decay": config.weight_decay}
    notes = []
    if config.weights:
        tensors = read_state_dict(config.weights)
        report = load_weights(architecture.network, tensors, prefix=config.weights_prefix, name=config.backbone)
        notes.append(report.summary("backbone"))
        model_record.update(weights=str(Path(config.weights).resolve()), weights_sha256=file_sha256(config.weights),
                            weights_prefix=report.prefix)
        if projector is not None:
            head = load_weights(projector, tensors, prefix=config.projector_prefix, tokens=PROJECTOR_PREFIXES,
                                name=f"the {config.projector} projector")
            notes.append(head.summary("projector"))
            model_record["projector_prefix"] = head.prefix
    data_args = config.data.as_dict()
    datamodule = DATAMODULE(**data_args)
    root = Path(config.root)
    experiment = config.run.experiment or f"probe_{model_name(config.backbone)}"
    version = config.run.version or next_version(root / experiment)
    run_dir = root / experiment / version
    if (run_dir / "config.yaml").exists():
        raise FileExistsError(f"{run_dir / 'config.yaml'} exists: this run directory belongs to another run; "
                              "choose another --run.version")
    datamodule.setup_for_run(run_dir)  # the data loads and the subset draws before anything is created
    check_writable(root)
    settings = {PROBE_CALLBACKS[key].name: getattr(config.probes, key).as_dict() for key in PROBE_CALLBACKS
                if PROBE_CALLBACKS[key].name in wanted}
    run_dir.mkdir(parents=True)
    record = {"command": "probe", "model": model_record, "data": data_args, "what": wanted,
              "probes": {key: {"class_path": f"{cls.__module__.rsplit('.', 1)[0]}.{cls.__name__}",
                               "init_args": settings[cls.name]}
                         for key, cls in PROBE_CALLBACKS.items() if cls.name in wanted},
              "seed_everything": config.seed, "settings_from": config.settings_from,
              "run": {"experiment": experiment, "version": version}}
    write_config(run_dir / "config.yaml", record)
    for note in notes:
        print(f"sslprobe: weights: {note}")
    loggers = [AppendedCSV(run_dir / "metrics.csv"), *wandb_loggers(config.wandb_project, record, run_dir)]
    results = probe(architecture.backbone, datamodule, wanted, projector, objective, out=run_dir, settings=settings,
                    seed=config.seed, weight_decay=config.weight_decay, device=config.device,
                    name=f"{config.backbone} {json.dumps(config.backbone_kwargs or {}, sort_keys=True)}",
                    rebuild=architecture.rebuild, loggers=loggers)
    for name in wanted:
        prefix = f"{name}/"
        if name in results.declined:
            print(f"{name}: does not apply: {results.declined[name]}")
        else:
            print(f"{name}: {summarize({k: v for k, v in results.metrics.items() if k.startswith(prefix)})}")
    print(f"run: {run_dir} | logged to {', '.join(describe_logger(lg) for lg in loggers)}")
    for logger in loggers:
        if hasattr(logger, "experiment"):
            logger.experiment.finish()


def settings_source(argv: list[str]) -> Path | None:
    """The run directory of ``--settings_from`` in ``argv`` (read before parsing: it sets defaults)."""
    for index, arg in enumerate(argv):
        if arg.startswith("--settings_from="):
            return Path(arg.partition("=")[2])
        if arg == "--settings_from" and index + 1 < len(argv):
            return Path(argv[index + 1])
    return None


def run_settings(run_dir: Path, parser: ArgumentParser) -> dict:
    """``data.<option>`` and ``probes.<probe>.<option>`` of a run's config.yaml, those this parser has."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"--settings_from {run_dir}: no config.yaml there (give a run directory)")
    config = yaml.safe_load(path.read_text()) or {}
    known = set(parser.get_defaults().keys())
    defaults = {f"data.{k}": v for k, v in (config.get("data") or {}).items()}
    for key, section in (config.get("probes") or {}).items():
        if isinstance(section, dict):
            defaults.update({f"probes.{key}.{k}": v for k, v in (section.get("init_args") or section).items()})
    return {key: value for key, value in defaults.items() if key in known}


def write_config(path: Path, record: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump(json.loads(json.dumps(record, default=list)), sort_keys=False))


def wandb_loggers(project: str | None, record: dict, run_dir: Path) -> list:
    """A W&B run of this probe (offline unless logged in), holding config.yaml; none without a project."""
    if project is None:
        return []
    from lightning.pytorch.loggers import WandbLogger

    experiment, version = record["run"]["experiment"], record["run"]["version"]
    logger = WandbLogger(project=project, save_dir=str(run_dir), name=f"{experiment}/{version}",
                         id=wandb_run_id(experiment, version), offline=not wandb_logged_in())
    logger._wandb_init.pop("anonymous", None)
    logger.experiment.config.update({k: v for k, v in record.items()}, allow_val_change=True)
    logger.experiment.save(str(run_dir / "config.yaml"), base_path=str(run_dir), policy="now")
    return [logger]
