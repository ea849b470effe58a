"""``torch-sugar run``: a Python program, unchanged, with SUGAR for every ReLU it computes.

Its options come before the program and everything after the program is the program's, which
argparse cannot express for a subparser: :func:`torch_sugar.cli.main` hands ``run ...`` to
:func:`torch_sugar._run.main`, which has its own parser (and ``--help``), before parsing; this
subcommand is registered so that ``torch-sugar --help`` lists it."""

import argparse
from typing import Sequence

from ._base import Subcommand


class Run(Subcommand):
    name = "run"
    help = "run a Python program with SUGAR for every ReLU it computes (torch-sugar run --help)"

    def parser_options(self) -> dict:
        return {"add_help": False}

    def run(self, args: argparse.Namespace, argv: Sequence[str]) -> int:
        from .._run import main

        return main(list(argv)[1:])
