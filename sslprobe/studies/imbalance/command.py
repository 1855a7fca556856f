"""The study's command line (``scripts/reproduce_imbalance.py``): arguments, checks, and what runs.

Bad arguments end with one line on stderr (``reproduce_imbalance: error: ...``) and exit code 2,
before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from sslprobe.options import OneLineParser
from sslprobe.studies.imbalance.grid import (
    StudyError,
    check_dataset,
    finished,
    fit_command,
    grid,
    imbalance_options,
    parse_seeds,
    prepare,
    write_cell_config,
)
from sslprobe.studies.imbalance.presets import IMBALANCES, METHODS, PRESETS, PROJECTORS, REPO, STUDY

SLURM_OPTIONS = ("partition", "time", "gpus_per_task", "cpus_per_task", "cells_per_task", "signal_delay", "executor")


def sweep_yaml(preset_name: str, methods, imbalances, projectors, seeds: list[int], out: Path,
               dataset: str | None = None) -> str:
    """A W&B grid sweep whose agents each run one (method, imbalance, projector, seed) cell."""
    lines = [
        f"# W&B sweep of the imbalance study, preset {preset_name!r}: run with `wandb sweep` + `wandb agent`.",
        "program: scripts/reproduce_imbalance.py",
        "method: grid",
        "command: [${interpreter}, ${program}, ${args}]",
        "parameters:",
        f"  preset: {{value: {preset_name}}}",
        f"  out: {{value: {out}}}",
        f"  methods: {{values: {list(methods)}}}",
        f"  imbalances: {{values: {list(imbalances)}}}",
        f"  projectors: {{values: {list(projectors)}}}",
        f"  seed: {{values: {list(seeds)}}}",
        *([f"  dataset: {{value: {dataset}}}"] if dataset is not None else []),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None, description: str | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=description or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", default=None,
                        help="seeds per cell: a count (3: seeds 0-2) or ranges (3-13, 0-2,7); preset default")
    parser.add_argument("--seed", type=int, default=None, help="run only this seed (sweep agents)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--imbalances", nargs="+", default=list(IMBALANCES),
                        help="none medium high (CIFAR-10), dirichlet:<concentration>, long_tail:<ratio>, "
                             "step:<ratio>")
    parser.add_argument("--dataset", default=None,
                        help="data.dataset of every cell (default: the configs' CIFAR-10); e.g. cifar100")
    parser.add_argument("--projectors", nargs="+", default=list(PROJECTORS))
    parser.add_argument("--data-root", default=str(REPO / "data"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands; run and write nothing")
    parser.add_argument("--emit-sweep", type=Path, default=None, help="write a W&B sweep file and exit")
    parser.add_argument("--aggregate-only", action="store_true", help="redraw table and figure from results.csv")
    parser.add_argument("--merge", type=Path, nargs="+", default=[], metavar="CSV",
                        help="add the rows of earlier parts of this study (their results.csv, e.g. seeds run "
                             "elsewhere) before aggregating; duplicates and other test-set sizes are refused")
    parser.add_argument("--reevaluate", type=Path, default=None, metavar="SOURCE",
                        help="evaluate the cells finished in the study folder SOURCE again from their checkpoints "
                             "(no training) with --eval-train-size / --eval-test-size, into --out")
    parser.add_argument("--eval-train-size", type=int, default=None, metavar="N",
                        help="with --reevaluate: balanced probe training images (default: all 50,000)")
    parser.add_argument("--eval-test-size", type=int, default=None, metavar="N",
                        help="with --reevaluate: balanced test images (default: all 10,000)")
    parser.add_argument("--cells-per-device", type=int, default=1, metavar="K",
                        help="run K cells at once per device (per GPU, or sharing the CPU), each its own process")
    add_launcher_arguments(parser)
    return parser.parse_args(argv)


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and the job array's options (`sslprobe.studies.imbalance.launcher`)."""
    from jsonargparse.typing import NonNegativeInt, PositiveInt

    from sslprobe.studies.imbalance.launcher import EXECUTORS, LAUNCHERS

    parser.add_argument("--launcher", choices=LAUNCHERS, default="local",
                        help="local: run the cells here; slurm: submit them as one SLURM job array (submitit)")
    slurm = parser.add_argument_group("--launcher slurm")
    slurm.add_argument("--partition", default=None, help="SLURM partition (the cluster's default if not given)")
    slurm.add_argument("--time", type=PositiveInt, default=None, metavar="MINUTES",
                       help="time limit of one array task, in minutes (> 0; default 60)")
    slurm.add_argument("--gpus-per-task", type=NonNegativeInt, default=None,
                       help="GPUs of one array task (>= 0; default 1)")
    slurm.add_argument("--cpus-per-task", type=PositiveInt, default=None,
                       help="CPU cores of one array task (> 0; default: the preset's loader workers + 1)")
    slurm.add_argument("--cells-per-task", type=PositiveInt, default=None,
                       help="cells run one after another by one array task (> 0; default 1)")
    slurm.add_argument("--signal-delay", type=PositiveInt, default=None, metavar="SECONDS",
                       help="SIGUSR1 this long before the time limit (> 0; default 90): checkpoint and requeue")
    slurm.add_argument("--executor", choices=EXECUTORS, default=None,
                       help="submitit executor: slurm (sbatch), or local (the same array on this machine)")


def slurm_options(args: argparse.Namespace):
    """The job array's options; `StudyError` if they are given without ``--launcher slurm``."""
    from sslprobe.studies.imbalance.launcher import SlurmOptions

    given = {name: getattr(args, name) for name in SLURM_OPTIONS if getattr(args, name) is not None}
    if args.launcher != "slurm":
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise StudyError(f"{flags} only apply to --launcher slurm")
        return None
    options = SlurmOptions(**given)
    options.check()
    return options


def validate(args: argparse.Namespace) -> None:
    """`StudyError` for an unknown method, imbalance (`IMBALANCE_SPECS`), projector or dataset name, the
    paper's CIFAR-10 presets on another data set, or a count below its minimum."""
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise StudyError(f"unknown method(s) {unknown}; valid: {', '.join(METHODS)}")
    for imbalance in args.imbalances:
        imbalance_options(imbalance)
    check_dataset(args.dataset, args.imbalances, args.methods)
    unknown = [p for p in args.projectors if p not in PROJECTORS]
    if unknown:
        raise StudyError(f"unknown projector(s) {unknown}; valid: mlp, none")
    if args.cells_per_device < 1:
        raise StudyError(f"--cells-per-device must be >= 1, got {args.cells_per_device}")
    if args.seeds is not None:
        parse_seeds(args.seeds)
    if args.reevaluate is None and (args.eval_train_size is not None or args.eval_test_size is not None):
        raise StudyError("--eval-train-size and --eval-test-size only apply to --reevaluate")
    for flag, value in (("--eval-train-size", args.eval_train_size), ("--eval-test-size", args.eval_test_size)):
        if value is not None and value < 10:
            raise StudyError(f"{flag} must be >= 10 (one image per class at least), got {value}")
    if args.reevaluate is not None:
        if not (args.reevaluate / "preset.yaml").is_file():
            raise StudyError(f"--reevaluate: {args.reevaluate} is not a study folder (no preset.yaml)")
        if args.reevaluate.resolve() == args.out.resolve():
            raise StudyError("--reevaluate writes a new study folder: give --out another folder than SOURCE")


def main(argv: list[str] | None = None, description: str | None = None) -> int:
    """Run the study (or print it, write its sweep file, or re-aggregate it); the exit code.

    Args:
        argv: the command line without the program name (default: ``sys.argv[1:]``).
        description: the ``--help`` text (the entry point's docstring).
    """
    from sslprobe.studies.imbalance.launcher import launch_slurm
    from sslprobe.studies.imbalance.reevaluate import reevaluate
    from sslprobe.studies.imbalance.results import aggregate, collect, merge_rows
    from sslprobe.studies.imbalance.running import run_cells

    args = parse_args(argv, description)
    try:
        validate(args)
        slurm = slurm_options(args)
        out = args.out.resolve()
        seeds = list(range(PRESETS[args.preset]["seeds"])) if args.seeds is None else parse_seeds(args.seeds)
        if args.emit_sweep:
            args.emit_sweep.parent.mkdir(parents=True, exist_ok=True)
            args.emit_sweep.write_text(sweep_yaml(args.preset, args.methods, args.imbalances, args.projectors,
                                                  seeds, args.out, args.dataset))
            print(f"wrote {args.emit_sweep}")
            return 0
        if args.aggregate_only:
            if args.merge:
                raise StudyError("--merge adds to a study's own rows: run without --aggregate-only "
                                 "(finished cells are reused)")
            aggregate(out)
            print(f"wrote {out / 'summary.md'} and {out / 'figure4.png'}")
            return 0
        if args.seed is None:
            cells = grid(args.methods, args.imbalances, args.projectors, seeds, args.dataset)
        else:  # one seed only (a sweep agent's cell)
            cells = [dataclasses.replace(c, seed=args.seed)
                     for c in grid(args.methods, args.imbalances, args.projectors, 1, args.dataset)]
        if args.merge:
            merge_rows([], args.merge)  # a bad part is refused before anything runs
        if args.reevaluate is not None:
            source = args.reevaluate.resolve()
            done = finished(cells, source, STUDY, args.preset)
            print(f"{len(done)} of {len(cells)} cells finished in {source}; evaluating them again on "
                  f"{args.eval_train_size or 'all'} + {args.eval_test_size or 'all'} images")
            if not done:
                raise StudyError(f"--reevaluate: no cell of this grid is finished in {source}")
            if args.dry_run:
                return 0
            rows = reevaluate(done, source, out, STUDY, args.eval_train_size, args.eval_test_size)
            aggregate(out, merge_rows(rows, args.merge))
            print(f"wrote {out / 'results.csv'}, {out / 'summary.md'}, {out / 'figure4.png'}")
            return 0
        done = finished(cells, out, STUDY, args.preset)
        todo = [c for c in cells if c not in done]
        print(f"{len(cells)} cells, {len(cells) - len(todo)} already finished; preset {args.preset}: "
              f"{PRESETS[args.preset]['description']}" + (f"; data set {args.dataset}" if args.dataset else ""))
        if args.dry_run:  # the commands only: nothing is written (the configs they name are written by a run)
            for cell in todo:
                print(" ".join(fit_command(cell, out)))
            return 0
        prepare(out, args.preset, args.data_root)
        (out / "logs").mkdir(exist_ok=True)
        for cell in todo:
            write_cell_config(cell, out, STUDY)
        if slurm is not None:
            launch_slurm(todo, out, STUDY, PRESETS[args.preset], slurm, args.cells_per_device)
        else:
            run_cells(todo, out, STUDY, PRESETS[args.preset], args.cells_per_device)
        aggregate(out, merge_rows(collect(cells, out, STUDY), args.merge))
        print(f"wrote {out / 'results.csv'}, {out / 'summary.md'}, {out / 'figure4.png'}")
        return 0
    except (StudyError, RuntimeError) as error:
        print(f"reproduce_imbalance: error: {error}", file=sys.stderr)
        return 2
