"""Reproduce the linear-model figures of Ziyin et al. (2023) with the theory's prediction overlaid.

    python scripts/theory_figures.py --out results/theory [--quick]

Writes fig1.png, fig3.png, fig5_left.png, fig5_mid.png, fig5_mid_long.png, fig5_right.png,
fig5_cifar.png, fig6.png, fig7.png and results.json (per figure: predicted and measured critical
points / ranks / exponents, their relative disagreement, whether they agree and why not, and the
simulator's convergence).
``--quick`` shrinks every experiment (used by the tests); it is not expected to agree closely.
fig5_cifar trains on real CIFAR-10 (``--data-root``, the folder holding ``cifar-10-batches-py``).
The figures are computed by `sslprobe.studies.theory_figures`; this script parses its arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

# Run as a file, this script imports the sslprobe of its own checkout (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.options import OneLineParser  # noqa: E402
from sslprobe.studies.theory_figures import FIGURES, run_figures  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder for PNGs and results.json")
    parser.add_argument("--quick", action="store_true", help="small, fast version (about 30 s of CPU)")
    parser.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="run only these figures")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--data-root", type=Path, default=Path("data"),
                        help="folder holding cifar-10-batches-py (fig5_cifar only; default: data)")
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        print(f"error: cannot write to --out {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    if args.threads < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    names = args.only or list(FIGURES)
    if "fig5_cifar" in names and not (args.data_root / "cifar-10-batches-py").is_dir():
        print(f"error: fig5_cifar needs CIFAR-10 in {args.data_root / 'cifar-10-batches-py'}; pass --data-root, "
              "or leave fig5_cifar out with --only", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    run_figures(args.out, names, quick=args.quick, data_root=args.data_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
