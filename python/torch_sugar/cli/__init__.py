"""The ``torch-sugar`` command (also ``python -m torch_sugar``).

    torch-sugar compare [flags]   ReLU vs SUGAR on a data set (the main job)
    torch-sugar run SCRIPT [ARGS] a Python program with SUGAR for every ReLU it computes
    torch-sugar surrogates        the surrogate table
    torch-sugar synthetic-ctr F   write the generated click data (user and item ids) as a CSV file
    torch-sugar info              how this copy was built

One module per subcommand, each a :class:`~._base.Subcommand`; :data:`SUBCOMMANDS` lists them in
the order of ``--help``. Adding one: a module here with a ``Subcommand`` subclass (``name``,
``help``, ``add_arguments``, ``run``), and its instance in :data:`SUBCOMMANDS`.

Bad input is one line on stderr and exit code 2; Ctrl-C during compare keeps the finished runs
and exits with 130. The machinery lives in :mod:`torch_sugar.experiments`.
"""

import argparse
import sys
from typing import Optional, Sequence

from ._base import PROG, Parser, Subcommand
from .compare import Compare
from .info import Info
from .run import Run
from .surrogates import Surrogates
from .synthetic_ctr import SyntheticCtr

SUBCOMMANDS: Sequence[Subcommand] = (Compare(), Run(), Surrogates(), Info(), SyntheticCtr())

__all__ = ["PROG", "SUBCOMMANDS", "Subcommand", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="torch-sugar: SUGAR (surrogate-gradient ReLU) as a native PyTorch operator, "
        "and a tool to compare it with ReLU on your data.",
        epilog="examples:\n  torch-sugar compare            # ReLU vs SUGAR on digits (the demo)\n"
        "  torch-sugar compare --help     # every flag of the experiment\n"
        "  torch-sugar run train.py ARGS  # your own program, every ReLU SUGAR (run --help)\n"
        "  torch-sugar surrogates         # the surrogate functions and their alphas\n"
        "  torch-sugar info               # build information",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in SUBCOMMANDS:
        command.add_to(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:  # everything after its program is the program's: see cli/run.py
        return Run().run(argparse.Namespace(), argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Optional[Subcommand] = getattr(args, "subcommand", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    return command.run(args, argv)
