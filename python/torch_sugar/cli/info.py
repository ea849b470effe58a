"""``torch-sugar info``: how this copy was built."""

import argparse
import json
from typing import Sequence

from ._base import Subcommand


class Info(Subcommand):
    name = "info"
    help = "print how this copy of torch-sugar was built (build_info())"
    description = "Print torch_sugar.build_info() as JSON, plus the library paths."

    def run(self, args: argparse.Namespace, argv: Sequence[str]) -> int:
        import torch_sugar

        info = dict(torch_sugar.build_info())
        info["library_path"] = torch_sugar.library_path
        info["cmake_prefix_path"] = torch_sugar.cmake_prefix_path
        print(json.dumps(info, indent=2))
        return 0
