"""``torch-sugar compare --script "python train.py ARGS"``: every activation x every seed of the
user's own training script, then the table of what it reported, results.json/results.csv and the
learning curves. The runs are :class:`~.script_tasks.ScriptTasks` tasks; results.json,
``--resume`` and the paired statistics are compare's own."""

import datetime
import functools
import os
import sys
from typing import List, Optional

import torch

import torch_sugar

from . import distributed
from .comparison import Comparison, _activations, _log, _resume
from .config import CompareConfig
from .errors import UsageError
from .report import safe_name
from .results import ResultsFile
from .script_results import format_report_tables, plot_report_curves, summarize_reports, write_reports_csv
from .script_tasks import ScriptTasks, run_options
from .tasks import Task, TaskResult, make_tasks, run_task


def compare_script(config: CompareConfig, resume: bool, command: Optional[List[str]]) -> int:
    """Runs the comparison of ``config.script``; returns the exit code: 0, 1 when no run
    finished, 130 after Ctrl-C."""
    specs, baseline = _activations(config)
    ctx = distributed.from_environment("cpu")
    if ctx.active:
        raise UsageError(
            "--script under torchrun: run compare itself in one process; it starts the script for each "
            "run (a script that trains on several processes is not supported by --script yet)"
        )
    for spec in specs:
        run_options(spec, 0)  # a plain activation cannot be put into a script: say so now
    script = config.script
    out_dir = config.run.out
    kind = ScriptTasks(script.script, out_dir or ".", config.training.select_by, script.timeout)
    if out_dir is None:
        name = (
            kind.program[1]
            if kind.program[0] == "-m"
            else os.path.splitext(os.path.basename(kind.program[0]))[0]
        )
        out_dir = os.path.join("results", f"compare-{safe_name(name)}")
        kind.out_dir = os.path.abspath(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create {out_dir}: {exc.strerror}") from None
    c = Comparison(
        config,
        ctx,
        specs,
        baseline,
        None,
        kind,
        script.script,
        out_dir,
        make_tasks(specs, config.comparison.seeds),
    )
    summarizer = functools.partial(summarize_reports, lower=script.lower_is_better)
    results = ResultsFile(
        out_dir, _payload(c, command), c.labels, baseline, True, summarizer, write_reports_csv
    )
    notes = _resume(c, results) if resume else []
    todo = [t for t in c.tasks if t.index not in results.records]
    jobs = min(config.run.jobs, max(len(todo), 1))
    _log(config.run.quiet, *_header(c, jobs), *notes, "")
    try:
        _run(c, todo, results, jobs)
    except KeyboardInterrupt:
        return _interrupted(c, results)
    return _report(c, results)


def _payload(c: Comparison, command: Optional[List[str]]) -> dict:
    return {
        "tool": "torch-sugar compare",
        "version": torch_sugar.__version__,
        "torch": torch.__version__,
        "python": sys.executable,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": None if command is None else " ".join(command),
        "config": c.config.as_dict(),
        "world_size": 1,
        "script": {"command": c.config.script.script, "program": c.kind.program, "cwd": c.kind.cwd},
        "data": {},  # the script's own; --resume compares the config (the command included)
        "activations": {s.label: s.describe() for s in c.specs},
        "complete": False,
        "interrupted": False,
        "runs": [],
        "summary": None,
    }


def _header(c: Comparison, jobs: int) -> List[str]:
    config, seeds = c.config, c.config.comparison.seeds
    select = config.training.select_by
    return [
        f"torch-sugar compare --script: {config.script.script}",
        f"  runs: {len(c.specs)} activations x {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
        f"{jobs} at a time; each `torch-sugar run --surrogate S --seed N ...` in {c.out_dir}/runs/<activation>-seed<N>/ "
        "(log.txt, reports.jsonl)",
        "  selection: "
        + (
            "each run's last report"
            if select is None
            else f"each run's report with the {select.replace(':', ' ')}"
        ),
        *(f"  {s.label:<14} {s.describe()}" for s in c.specs),
    ]


def _progress_bar(quiet: bool, total: int):
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="runs", unit=" runs", leave=True, dynamic_ncols=True, file=sys.stderr)


def _run(c: Comparison, todo: List[Task], results: ResultsFile, jobs: int) -> None:
    bar = _progress_bar(c.config.run.quiet, len(todo))

    def finish(result: TaskResult) -> None:
        results.add(result)
        if bar is not None:
            record = result.record
            bar.set_postfix_str(f"last: {record['activation']} seed {record['seed']} {record['status']}")

    try:
        if jobs > 1:
            c.kind.run_parallel(jobs, todo, bar, finish)
        else:
            for task in todo:
                finish(run_task(c.kind, task, bar))
    finally:
        if bar is not None:
            bar.close()


def _interrupted(c: Comparison, results: ResultsFile) -> int:
    results.save(interrupted=True)
    plots = (
        []
        if c.config.run.no_plots or not results.runs
        else plot_report_curves(c.out_dir, results.runs, c.labels, c.title)
    )
    print(
        f"\ntorch-sugar compare: interrupted; kept the {len(results.runs)} finished run(s) of {len(c.tasks)} in "
        f"{results.json_path}"
        + (" and the learning curves" if plots else "")
        + "; the same command with --resume runs the rest",
        file=sys.stderr,
    )
    return 130


def _report(c: Comparison, results: ResultsFile) -> int:
    results.save(complete=True)
    runs = results.runs
    print(f"{c.config.script.script}: {len(c.specs)} activations x {len(c.config.comparison.seeds)} seeds\n")
    print(
        format_report_tables(
            results.payload["summary"], runs, len(c.config.comparison.seeds), c.config.training.select_by
        )
    )
    plots = [] if c.config.run.no_plots else plot_report_curves(c.out_dir, runs, c.labels, c.title)
    print(
        f"\nresults: {results.json_path}, {results.csv_path}\nlogs:    {c.out_dir}/runs/<activation>-seed<N>/log.txt"
    )
    if plots:
        print("plots:   " + ", ".join(plots))
    return 0 if any(r["status"] == "done" for r in runs) else 1
