"""``python -m sslprobe probe``: the probes on a saved checkpoint, logged where its ``fit`` logged; with
``--backbone`` instead of ``--ckpt_path``, on a model trained anywhere (`sslprobe.cli.probe_model`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from sslprobe.cli.lightning_cli import PROBES
from sslprobe.cli.runs import _as_list, load_checkpoint, load_run, wandb_logged_in
from sslprobe.probes.api import measure


def checkpoint_probes() -> dict[str, str]:
    """``probe --what`` names (the probes' ``name``) -> config keys, of the probes that run on a checkpoint."""
    return {probe.name: key for key, probe in PROBES.items() if probe.from_checkpoint}


def build_probe(key: str, section: dict | None):
    """A probe callback from a saved config's ``probes.<key>`` section (defaults if absent)."""
    init_args = (section or {}).get("init_args", section or {}) if isinstance(section, dict) else {}
    init_args = {k: v for k, v in init_args.items() if k != "class_path"}
    return PROBES[key](**init_args)


def probe_command(argv: list[str]) -> None:
    """``python -m sslprobe probe``: on a run's checkpoint (``--ckpt_path``) or on any model (``--backbone``)."""
    if any(arg == "--ckpt_path" or arg.startswith("--ckpt_path=") for arg in argv):
        probe_checkpoint(argv)
    else:
        from sslprobe.cli.probe_model import probe_model

        probe_model(argv)


def probe_checkpoint(argv: list[str]) -> None:
    """``python -m sslprobe probe --ckpt_path RUN/checkpoints/last.ckpt [--what ...]``.

    Runs the probes on a saved checkpoint, without training, and writes their files into that
    run's ``probes/`` directory. Settings come from the run's ``config.yaml`` (its ``probes``
    section where present, else the probes' defaults).
    """
    import torch

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
    checkpoint = load_checkpoint(checkpoint_path)
    config, method, datamodule = load_run(checkpoint_path, args.device)
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
        results = measure(probe, method, datamodule, run_dir, epoch, log_to=log)  # 0-based epoch logged
        print(f"{name} (epoch {epoch}): {summarize(results)}")
    print(f"wrote {run_dir / 'probes'}; logged to {', '.join(describe_logger(lg) for lg in log.loggers)}")
    for logger in log.loggers:
        if hasattr(logger, "experiment"):
            logger.experiment.finish()  # the run's files are complete when `probe` returns


def summarize(scalars: dict) -> str:
    """``metric=value, ...`` of a probe's logged scalars (timing left out)."""
    return ", ".join(f"{k.split('/', 1)[1]}={v:.4g}" for k, v in scalars.items()
                     if isinstance(v, float) and not k.endswith("/seconds"))


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
