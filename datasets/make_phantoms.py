"""Write synthetic Synapse or ACDC data in any of the forms the loaders and preparation scripts read.

For tests, demos and checking an installation without the real data (see dlkunet/phantoms.py for
what the phantoms look like and where each form puts its files)::

    python datasets/make_phantoms.py --form synapse-transunet --out data/phantom_synapse
    python Train_Synapse.py --root_path data/phantom_synapse --list_dir data/phantom_synapse/lists_Synapse

    python datasets/make_phantoms.py --form acdc-raw --out data/phantom_acdc_raw --cases 12
    python datasets/prepare_acdc.py --raw data/phantom_acdc_raw/training --out data/phantom_acdc
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from dlkunet.errors import run_main  # noqa: E402
from dlkunet.phantoms import FORMS, make_phantoms  # noqa: E402


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Write phantom Synapse/ACDC data in one on-disk form.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--form", required=True, choices=FORMS, help="on-disk form to write")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--cases", type=int, default=None, help="cases/patients (default 8 Synapse, 10 ACDC)")
    parser.add_argument("--size", type=int, default=None, help="slice height in px (default 64)")
    parser.add_argument(
        "--slices", type=int, default=None, help="slices per volume (default 12 Synapse, 10 ACDC)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same data")
    return parser


def main(args):
    made = make_phantoms(
        args.form, args.out, cases=args.cases, size=args.size, slices=args.slices, seed=args.seed
    )
    if made["list_dir"] is None:
        print(f"wrote {args.form} to {args.out}; prepare it with --raw {made['root']}")
    else:
        print(
            f"wrote {args.form} to {args.out}; use --root_path {made['root']} --list_dir {made['list_dir']}"
        )


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
