"""``torch-sugar surrogates``: the surrogate table."""

import argparse
from typing import Sequence

from ._base import Subcommand


class Surrogates(Subcommand):
    name = "surrogates"
    help = "list the surrogates, their default alphas and ranges"
    description = "List every surrogate name the ops accept (torch_sugar.surrogates())."

    def run(self, args: argparse.Namespace, argv: Sequence[str]) -> int:
        import torch_sugar

        rows = [
            (
                s.name,
                "-" if s.default_alpha is None else f"{s.default_alpha:g}",
                s.alpha_range or "-",
                s.description
                + (f" (alias of {s.alias_of})" if s.alias_of and "alias" not in s.description else ""),
            )
            for s in torch_sugar.surrogates()
        ]
        header = ("name", "default alpha", "alpha range", "description")
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:3])]
        for row in [header] + rows:
            print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
        return 0
