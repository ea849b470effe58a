"""``torch-sugar synthetic-ctr FILE``: the generated click data as a CSV or Parquet file."""

import argparse
from typing import Sequence

from ..experiments.config import nonneg_int, positive_int
from ..experiments.errors import UsageError
from ._base import Subcommand


def _flag(parse):
    def checked(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    checked.__name__ = parse.__name__
    return checked


class SyntheticCtr(Subcommand):
    name = "synthetic-ctr"
    help = "write generated click data as a CSV file"
    description = (
        "Write the synthetic-ctr data (impressions of ads to users: user and item ids, ad category, "
        "device, numeric features, clicked) as a CSV file, to try `compare --csv` on."
    )
    needs = (("numpy", "numpy"),)
    probes = ("numpy", "numpy.random")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "path",
            metavar="FILE",
            help="the CSV file to write; a name ending in .parquet writes Parquet, generated a "
            "million rows at a time (for large files)",
        )
        parser.add_argument(
            "--rows",
            metavar="N",
            type=_flag(positive_int),
            default=20000,
            help="impressions (default %(default)s)",
        )
        parser.add_argument(
            "--users", metavar="N", type=_flag(positive_int), default=400, help="users (default %(default)s)"
        )
        parser.add_argument(
            "--seed",
            metavar="N",
            type=_flag(nonneg_int),
            default=0,
            help="generator seed (default %(default)s)",
        )

    def run(self, args: argparse.Namespace, argv: Sequence[str]) -> int:
        synthetic = self.import_experiments("synthetic")
        if synthetic is None:
            return 2
        try:
            if args.path.endswith(".parquet"):
                rate = synthetic.write_synthetic_ctr_parquet(args.path, args.rows, args.users, args.seed)
            else:
                rate = synthetic.write_synthetic_ctr_csv(args.path, args.rows, args.users, args.seed)
        except UsageError as exc:
            return self.error(str(exc).replace("--ctr-", "--"))
        except ImportError as exc:
            return self.import_failed(exc)
        print(
            f"{args.path}: {args.rows} impressions, {args.users} users, {synthetic.CTR_ADS} items, "
            f"{rate:.1%} clicks, generator seed {args.seed}; columns: {', '.join(synthetic.CTR_COLUMNS)}"
        )
        return 0
