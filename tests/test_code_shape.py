"""The shape of the experiment tool and the command line: no function over 80 lines, and no import
cycle between the modules of torch_sugar.experiments (counting imports inside functions too).
ruff's complexity rules (C901, PLR0912, PLR0915 in pyproject.toml) hold the rest of the line."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "python" / "torch_sugar"
MAX_LINES = 80


def modules(folder: str):
    return sorted((PACKAGE / folder).glob("*.py"))


@pytest.mark.parametrize("folder", ["experiments", "cli"])
def test_no_function_over_80_lines(folder):
    long = []
    for path in modules(folder):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
    assert len(modules(folder)) >= 4  # the files were found


def imports_of(path: pathlib.Path) -> set:
    """The sibling modules of torch_sugar.experiments that ``path`` imports, anywhere in it."""
    names = {p.stem for p in modules("experiments")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 and base:
                found.add(base.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif base.startswith("torch_sugar.experiments."):
                found.add(base.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("torch_sugar.experiments."):
                    found.add(alias.name.split(".")[2])
    return (found & names) - {path.stem}


def test_no_import_cycle_in_experiments():
    graph = {p.stem: imports_of(p) for p in modules("experiments")}
    assert graph["compare"] >= {"tasks", "parallel"} and "compare" not in graph["parallel"]
    state, cycles = {}, []

    def visit(name, stack):
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycles.append(stack[stack.index(other) :] + [other])
            elif other not in state:
                visit(other, stack + [other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles
