"""What every subcommand shares: the one-line-error parser and the :class:`Subcommand` base class
(torchtune's shape: one file per subcommand, registered in :data:`torch_sugar.cli.SUBCOMMANDS`)."""

import argparse
import importlib
import importlib.util
import sys
from typing import List, Optional, Sequence, Tuple

PROG = "torch-sugar"
INSTALL_EXPERIMENTS = "pip install 'torch-sugar[experiments]'"
#: What the experiment commands import beyond torch (import name, package name): the `experiments`
#: extra of pyproject.toml. `import torch_sugar` and the other commands need none of it.
SCIENTIFIC_STACK = (("numpy", "numpy"), ("sklearn", "scikit-learn"), ("scipy", "scipy"))


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage dump) and exits with 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Subcommand:
    """One ``torch-sugar`` subcommand. A subclass sets the class attributes, adds its flags in
    :meth:`add_arguments` and does its work in :meth:`run`, which returns the exit code."""

    name: str = ""
    help: str = ""
    description: Optional[str] = None
    epilog: Optional[str] = None
    #: (import name, package) the command needs beyond torch; checked before :meth:`run`.
    needs: Tuple[Tuple[str, str], ...] = ()
    #: Modules of :attr:`needs` imported up front, so that a broken install is one clear line
    #: (numpy's random generators: every experiment seeds them; torch swallows their ImportError).
    probes: Tuple[str, ...] = ()

    def add_to(self, subparsers) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            self.name,
            help=self.help,
            description=self.description or self.help,
            epilog=self.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **self.parser_options(),
        )
        self.add_arguments(parser)
        parser.set_defaults(subcommand=self)
        return parser

    def parser_options(self) -> dict:
        """Extra keyword arguments for this subcommand's ArgumentParser."""
        return {}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Adds this subcommand's flags."""

    def run(self, args: argparse.Namespace, argv: Sequence[str]) -> int:
        raise NotImplementedError

    def error(self, message: str) -> int:
        """One line on stderr (one write: under torchrun every rank prints to the same stream); 2."""
        sys.stderr.write(f"{PROG} {self.name}: error: {message}\n")
        sys.stderr.flush()
        return 2

    def missing_packages(self) -> List[str]:
        missing = []
        for module, package in self.needs:
            try:
                found = importlib.util.find_spec(module) is not None
            except ImportError:  # a finder that refuses the name (an environment that blocks it)
                found = False
            if not found:
                missing.append(package)
        return missing

    def import_experiments(self, module: str):
        """``torch_sugar.experiments.<module>``, or None after one line on stderr naming what of
        :attr:`needs` is missing and how to install it."""
        missing = self.missing_packages()
        if missing:
            names = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
            verb = "is" if len(missing) == 1 else "are"
            self.error(f"needs {names}, which {verb} not installed: {INSTALL_EXPERIMENTS}")
            return None
        try:
            for name in self.probes:
                importlib.import_module(name)
            return importlib.import_module(f"torch_sugar.experiments.{module}")
        except ImportError as exc:
            self.import_failed(exc)
            return None

    def import_failed(self, exc: ImportError) -> int:
        """A package of :attr:`needs` that is present but not importable (say, built for another
        numpy), found at import time or later: one line, 2. Other ImportErrors propagate."""
        top = (exc.name or "").partition(".")[0]
        if top not in dict(self.needs):
            raise exc
        return self.error(f"cannot import {top} ({exc}): {INSTALL_EXPERIMENTS}")
