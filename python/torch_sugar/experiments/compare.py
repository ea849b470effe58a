"""``torch-sugar compare``: every activation x every seed on one data set, then the tables,
results.json/results.csv and plots. :func:`run` takes the typed :class:`~.config.CompareConfig`.

The runs are :class:`~.tasks.Task` objects run by :func:`~.tasks.run_task`, one after the other
or in ``--jobs`` worker processes (:mod:`.parallel`); under torchrun every rank runs every task
together (:mod:`.distributed`). ``--resume`` keeps the finished runs of an interrupted comparison
(:mod:`.results`)."""

import datetime
import os
import sys
from dataclasses import replace
from typing import List, Optional

import torch

import torch_sugar

from . import distributed
from .activations import ActivationSpec
from .comparison import Comparison, _activations, _log, _resume
from .config import CompareConfig, RunConfig
from .errors import UsageError
from .loading import load_data
from .models import build_model, describe_model, resolve_norm
from .parallel import run_parallel
from .report import format_tables, plot_results, safe_name
from .results import ResultsFile
from .saved_models import write_preprocessing
from .tasks import ModelTasks, Task, TaskResult, make_tasks, run_task, set_determinism


def check_device(device: str, specs: List[ActivationSpec]) -> None:
    if device != "cuda":
        return
    if not torch.cuda.is_available():
        why = "this torch has no CUDA support" if torch.version.cuda is None else "no GPU is visible"
        raise UsageError(
            f"--device cuda: CUDA is not available ({why}, torch {torch.__version__}); use --device cpu"
        )
    if any(s.kind == "sugar" for s in specs) and not torch_sugar.build_info()["kernels"]["CUDA"]:
        raise UsageError(
            "--device cuda: this torch-sugar build has no CUDA kernels for sugar::relu "
            "(built with SUGAR_CUDA=0); rebuild with CUDA or use --device cpu"
        )


def _progress_bar(quiet: bool, total: int, desc: str):
    """A bar over ``total`` training rows, so its rate is rows/s like results.json's per-epoch
    ``train_rows_per_second`` (counts scaled: 12.3k rows)."""
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(
        total=total,
        desc=desc,
        unit=" rows",
        unit_scale=True,
        leave=True,
        dynamic_ncols=True,
        file=sys.stderr,
        mininterval=0.5,
    )


def run(config: CompareConfig, resume: bool = False, command: Optional[List[str]] = None) -> int:
    """Runs the comparison; returns the exit code (0, or 130 after Ctrl-C). ``config`` is checked
    (:meth:`~.config.CompareConfig.check`: the command line has done so, Python callers need not);
    ``resume``: keep the finished runs of the results.json in the output folder (``--resume``);
    ``command``: the command line, for results.json.

    Torch's thread count and deterministic-algorithms setting are set for the run and put back
    afterwards, so calling this from other Python code leaves the process as it was."""
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        return _compare(config.check(), resume, command)
    finally:
        distributed.leave()  # torchrun: wait for the other ranks, then leave the group
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])


def _make_dirs(out_dir: str, run_cfg: RunConfig) -> None:
    try:
        os.makedirs(out_dir, exist_ok=True)
        if run_cfg.save_predictions:
            os.makedirs(os.path.join(out_dir, "predictions"), exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create {out_dir}: {exc.strerror}") from None
    if run_cfg.save_models is not None:
        try:
            os.makedirs(run_cfg.save_models, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--save-models: cannot create {run_cfg.save_models}: {exc.strerror}") from None


def set_up(config: CompareConfig, specs, baseline, ctx: distributed.Context) -> Comparison:
    """The data, the task kind and its model's description, the output folders. Raises UsageError
    on bad input."""
    data = load_data(config.data)
    training, model_cfg, run_cfg = config.training, config.model, config.run
    if data.n_classes != 2:
        for flag, value in (
            ("--pos-weight", training.pos_weight),
            ("--select-by auc", training.select_by == "auc"),
        ):
            if value:
                raise UsageError(f"{flag} needs two classes; {data.name} has {data.n_classes}")
    kind = ModelTasks(data, model_cfg, training, run_cfg.device, run_cfg.threads, run_cfg.save_models)
    _, probe = kind.factory()
    if probe is not None:
        params = sum(p.numel() for p in probe.parameters())
        model_text = f"{model_cfg.model_fn} ({type(probe).__name__}, {params:,} parameters)"
    else:
        m = model_cfg
        probe = build_model(m.model, data.spec, data.n_classes, m.hidden, m.width, m.dropout, m.norm, m.init)
        model_text = describe_model(m.model, probe, m.hidden, m.width)
    out_dir = run_cfg.out or os.path.join("results", f"compare-{safe_name(data.name)}")
    if ctx.main:
        _make_dirs(out_dir, run_cfg)
    tasks = make_tasks(specs, config.comparison.seeds)
    return Comparison(config, ctx, specs, baseline, data, kind, model_text, out_dir, tasks)


def header(c: Comparison, jobs: int) -> List[str]:
    """The lines printed before the runs: the data, the model, the training, the activations."""
    config, data, d = c.config, c.data, c.data.describe()
    m, t, run_cfg = config.model, config.training, config.run
    group_text = f", groups by {data.group_name!r}" if data.group_name else ""
    model = f"  model: {c.model_text}"
    if m.model_fn is None:
        norm = "batch norm" if resolve_norm(m.model, m.norm) == "batch" else "no norm layers"
        model += f", {m.init} init, {norm}" + (f", dropout {m.dropout:g}" if m.dropout else "")
    training = (
        f"  training: {t.optimizer} lr {t.lr:g}"
        + (f" momentum {t.momentum:g}" if t.optimizer == "sgd" else "")
        + f", batch {t.batch_size}, {t.epochs} epochs, {t.schedule} schedule, {run_cfg.device}, "
        f"{run_cfg.threads} thread{'s' if run_cfg.threads > 1 else ''}"
        + (f" in each of {jobs} worker processes" if jobs > 1 else "")
    )
    ddp = (
        [
            f"  torchrun: DistributedDataParallel over {c.ctx.world} ranks, each global batch of "
            f"{t.batch_size} rows split between them"
        ]
        if c.ctx.active
        else []
    )
    selection = (
        f"  selection: the epoch with the best validation {'AUC' if t.select_by == 'auc' else 'loss'}"
        + (f", early stopping after {t.patience} epochs without improvement" if t.patience else "")
        + ("" if t.pos_weight is None else f"; positive class weight {t.pos_weight}")
    )
    return [
        f"torch-sugar compare: {data.name}, {d['n_train']} train / {d['n_val']} validation / {d['n_test']} test "
        f"rows, {data.n_classes} classes{group_text}",
        *(f"  {note}" for note in data.notes),
        model,
        training,
        *ddp,
        selection,
        f"  seeds: {', '.join(map(str, config.comparison.seeds))}",
        *(f"  {s.label:<14} {s.describe()}" for s in c.specs),
    ]


def _payload(c: Comparison, command: Optional[List[str]]) -> dict:
    return {
        "tool": "torch-sugar compare",
        "version": torch_sugar.__version__,
        "torch": torch.__version__,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": None if command is None else " ".join(command),
        "config": c.config.as_dict(),
        "world_size": c.ctx.world,
        "data": c.data.describe(),
        "input_spec": c.data.spec.as_dict(),
        "model": c.model_text,
        "activations": {s.label: s.describe() for s in c.specs},
        "complete": False,
        "interrupted": False,
        "runs": [],
        "summary": None,
    }


def _run_tasks(c: Comparison, todo: List[Task], results: ResultsFile, jobs: int) -> None:
    """The tasks left, one after the other or in ``jobs`` worker processes; each finished run is
    written at once (and its predictions, with --save-predictions)."""
    quiet, per_task = c.config.run.quiet, c.kind.progress_total

    def finish(result: TaskResult) -> None:
        if c.config.run.save_predictions and result.predictions is not None:
            stem = c.tasks[result.index].stem
            c.kind.write_predictions(os.path.join(c.out_dir, "predictions", f"{stem}.csv"), result)
        results.add(result)

    if jobs > 1:
        bar = _progress_bar(quiet, per_task * len(todo), f"{len(todo)} runs in {jobs} processes")
        try:
            run_parallel(jobs, c.kind, todo, bar, finish)
        finally:
            if bar is not None:
                bar.close()
        return
    c.kind.prepare_process()
    for task in todo:
        bar = _progress_bar(
            quiet, per_task, f"[{task.index + 1}/{len(c.tasks)}] {task.label} seed {task.seed}"
        )
        try:
            result = run_task(c.kind, task, bar, c.ctx)
        finally:
            if bar is not None:
                bar.close()
        finish(result)


def _interrupted(c: Comparison, results: ResultsFile) -> int:
    results.save(interrupted=True)
    if not c.ctx.main:
        return 130
    runs, run_cfg = results.runs, c.config.run
    plots = [] if run_cfg.no_plots or not runs else plot_results(c.out_dir, runs, c.labels, c.title)
    print(
        f"\ntorch-sugar compare: interrupted; kept the {len(runs)} finished run(s) of {len(c.tasks)} in "
        f"{results.json_path}"
        + (f" and {len(plots)} plot(s)" if plots else "")
        + "; the same command with --resume runs the rest",
        file=sys.stderr,
    )
    return 130


def _report(c: Comparison, results: ResultsFile) -> int:
    results.save(complete=True)
    if not c.ctx.main:
        return 0
    run_cfg, runs = c.config.run, results.runs
    print(f"{c.title}, test set of {len(c.data.test)} rows\n")
    print(format_tables(results.payload["summary"], runs, len(c.config.comparison.seeds)))
    plots = [] if run_cfg.no_plots else plot_results(c.out_dir, runs, c.labels, c.title)
    print(f"\nresults: {results.json_path}, {results.csv_path}")
    if run_cfg.save_models is not None:
        print(f"models:  {run_cfg.save_models}/ (state_dict and TorchScript per run, preprocessing.json)")
    if plots:
        print("plots:   " + ", ".join(plots))
    elif not run_cfg.no_plots:
        print("plots:   skipped (matplotlib is not installed)")
    return 0


def _compare(config: CompareConfig, resume: bool, command: Optional[List[str]]) -> int:
    if config.script.script is not None:
        from .script_compare import compare_script

        return compare_script(config, resume, command)
    specs, baseline = _activations(config)
    check_device(config.run.device, specs)
    ctx = distributed.from_environment(config.run.device)
    if ctx.active and config.run.jobs > 1:
        raise UsageError("--jobs: under torchrun every run already uses all the ranks; leave --jobs out")
    if not ctx.main:  # torchrun: only rank 0 prints and writes
        quiet = replace(config.run, quiet=True, no_plots=True, save_predictions=False, save_models=None)
        config = replace(config, run=quiet)
    set_determinism(config.run.device, config.run.threads)
    error = None
    try:
        c = set_up(config, specs, baseline, ctx)
    except UsageError as exc:
        error = str(exc)
    distributed.agree(ctx, error)  # bad input on any rank stops every rank, before training
    results = ResultsFile(c.out_dir, _payload(c, command), c.labels, baseline, writes=ctx.main)
    notes = _resume(c, results) if resume else []
    todo = [t for t in c.tasks if t.index not in results.records]
    jobs = min(config.run.jobs, len(todo))
    _log(config.run.quiet, *header(c, jobs), *notes, "")
    if config.run.save_models is not None:
        results.payload["preprocessing"] = write_preprocessing(
            config.run.save_models, c.data.preprocessing, c.data.spec, c.model_text, c.labels
        )
    try:
        _run_tasks(c, todo, results, jobs)
    except KeyboardInterrupt:
        return _interrupted(c, results)
    return _report(c, results)
