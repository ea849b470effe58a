"""``torch-sugar compare``: every activation x every seed on one data set, then the tables,
results.json/results.csv and plots. :func:`run` takes the typed :class:`~.config.CompareConfig`."""

import datetime
import os
import sys
import time
from dataclasses import replace
from typing import List, Optional

import torch

import torch_sugar

from . import distributed
from .activations import parse_activations
from .config import CompareConfig, RunConfig
from .errors import UsageError
from .loading import load_data
from .models import build_model, describe_model, resolve_norm
from .report import (
    format_tables,
    plot_results,
    safe_name,
    summarize,
    write_csv,
    write_json,
    write_predictions,
)
from .train import TrainConfig, train_one
from .user_model import model_factory, save_model, write_preprocessing


def _log(quiet: bool, *lines: str) -> None:
    if not quiet:
        for line in lines:
            print(line, flush=True)


def set_determinism(device: str, threads: int) -> None:
    """Same seed, same numbers on the CPU: fixed thread count, deterministic kernels."""
    torch.set_num_threads(threads)
    if device == "cuda":
        # cuBLAS needs this before its first use to pick deterministic reductions
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def check_device(device: str, specs) -> None:
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


def train_config(config: CompareConfig) -> TrainConfig:
    m, t = config.model, config.training
    return TrainConfig(
        model=m.model,
        hidden=tuple(m.hidden),
        width=m.width,
        dropout=m.dropout,
        norm=m.norm,
        init=m.init,
        epochs=t.epochs,
        lr=t.lr,
        optimizer=t.optimizer,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        schedule=t.schedule,
        batch_size=t.batch_size,
        eval_batch_size=t.eval_batch_size,
        clip_grad=t.clip_grad,
        augment=t.augment,
        device=config.run.device,
        select_by=t.select_by,
        patience=t.patience,
        pos_weight=t.pos_weight,
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
    """Runs the comparison; returns the exit code (0, or 130 after Ctrl-C).

    Torch's thread count and deterministic-algorithms setting are set for the run and put back
    afterwards, so calling this from other Python code leaves the process as it was."""
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        return _run(config, command)
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


def _set_up(config: CompareConfig, cfg, ctx):
    """The data, the model factory and its description, the output folders: (data, factory,
    model_text, norm, out_dir). Raises UsageError on bad input."""
    data = load_data(config.data)
    if data.n_classes != 2:
        for flag, value in (
            ("--pos-weight", cfg.pos_weight),
            ("--select-by auc", cfg.select_by == "auc" or None),
        ):
            if value is not None:
                raise UsageError(f"{flag} needs two classes; {data.name} has {data.n_classes}")
    factory = None
    model_fn = config.model.model_fn
    if model_fn is not None:
        factory, probe = model_factory(model_fn, data.spec, data.n_classes, data.example_rows())
        params = sum(p.numel() for p in probe.parameters())
        model_text = f"{model_fn} ({type(probe).__name__}, {params:,} parameters)"
    else:
        probe = build_model(
            cfg.model, data.spec, data.n_classes, cfg.hidden, cfg.width, cfg.dropout, cfg.norm, cfg.init
        )
        model_text = describe_model(cfg.model, probe, cfg.hidden, cfg.width)
    norm = resolve_norm(cfg.model, cfg.norm)
    del probe

    out_dir = config.run.out or os.path.join("results", f"compare-{safe_name(data.name)}")
    if ctx.main:
        _make_dirs(out_dir, config.run)
    return data, factory, model_text, norm, out_dir


def _run(config: CompareConfig, command: Optional[List[str]]) -> int:
    comparison, run_cfg = config.comparison, config.run
    specs = parse_activations(comparison.activations, comparison.negative_only)
    labels = [s.label for s in specs]
    baseline = comparison.baseline
    if baseline is not None:
        if baseline not in labels:
            raise UsageError(f"--baseline: {baseline!r} is not one of --activations ({', '.join(labels)})")
    else:
        baseline = "relu" if "relu" in labels else labels[0]
    if len(labels) == 1:
        baseline = None
    check_device(run_cfg.device, specs)
    n_jobs = run_cfg.jobs
    ctx = distributed.from_environment(run_cfg.device)
    if ctx.active and n_jobs > 1:
        raise UsageError("--jobs: under torchrun every run already uses all the ranks; leave --jobs out")
    if not ctx.main:  # torchrun: only rank 0 prints and writes
        run_cfg = replace(run_cfg, quiet=True, no_plots=True, save_predictions=False, save_models=None)
        config = replace(config, run=run_cfg)
    set_determinism(run_cfg.device, run_cfg.threads)
    cfg = train_config(config)
    seeds = comparison.seeds

    error = None
    try:
        data, factory, model_text, norm, out_dir = _set_up(config, cfg, ctx)
    except UsageError as exc:
        error = str(exc)
    distributed.agree(ctx, error)  # bad input on any rank stops every rank, before training
    json_path, csv_path = os.path.join(out_dir, "results.json"), os.path.join(out_dir, "results.csv")

    d = data.describe()
    title = (
        f"{data.name}: {model_text}, {cfg.optimizer} lr {cfg.lr:g}, {cfg.epochs} epochs, "
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
    )
    group_text = f", groups by {data.group_name!r}" if data.group_name else ""
    _log(
        run_cfg.quiet,
        f"torch-sugar compare: {data.name}, {d['n_train']} train / {d['n_val']} validation / "
        f"{d['n_test']} test rows, {data.n_classes} classes{group_text}",
        *(f"  {note}" for note in data.notes),
        f"  model: {model_text}"
        + (
            ""
            if factory is not None
            else f", {cfg.init} init, "
            + ("batch norm" if norm == "batch" else "no norm layers")
            + (f", dropout {cfg.dropout:g}" if cfg.dropout else "")
        ),
        f"  training: {cfg.optimizer} lr {cfg.lr:g}"
        + (f" momentum {cfg.momentum:g}" if cfg.optimizer == "sgd" else "")
        + f", batch {cfg.batch_size}, {cfg.epochs} epochs, {cfg.schedule} schedule, "
        f"{cfg.device}, {run_cfg.threads} thread{'s' if run_cfg.threads > 1 else ''}"
        + (f" in each of {min(n_jobs, len(seeds) * len(specs))} worker processes" if n_jobs > 1 else ""),
        *(
            [
                f"  torchrun: DistributedDataParallel over {ctx.world} ranks, each global batch of "
                f"{cfg.batch_size} rows split between them"
            ]
            if ctx.active
            else []
        ),
        f"  selection: the epoch with the best validation {'AUC' if cfg.select_by == 'auc' else 'loss'}"
        + (f", early stopping after {cfg.patience} epochs without improvement" if cfg.patience else "")
        + ("" if cfg.pos_weight is None else f"; positive class weight {cfg.pos_weight}"),
        f"  seeds: {', '.join(map(str, seeds))}",
        *(f"  {s.label:<14} {s.describe()}" for s in specs),
        "",
    )

    payload = {
        "tool": "torch-sugar compare",
        "version": torch_sugar.__version__,
        "torch": torch.__version__,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": None if command is None else " ".join(command),
        "config": config.as_dict(),
        "world_size": ctx.world,
        "data": d,
        "input_spec": data.spec.as_dict(),
        "model": model_text,
        "activations": {s.label: s.describe() for s in specs},
        "complete": False,
        "interrupted": False,
        "runs": [],
        "summary": None,
    }
    runs: List[dict] = payload["runs"]
    rows_per_run = len(data.train) * cfg.epochs  # what a run's progress bar counts
    total = len(seeds) * len(specs)
    started = time.perf_counter()

    def save() -> None:
        if not ctx.main:
            return
        payload["summary"] = summarize(runs, labels, baseline)
        payload["wall_seconds"] = time.perf_counter() - started
        write_json(json_path, payload)
        write_csv(csv_path, runs)

    if run_cfg.save_models is not None:
        payload["preprocessing"] = write_preprocessing(
            run_cfg.save_models, data.preprocessing, data.spec, model_text, labels
        )
    tasks = [(spec, seed) for seed in seeds for spec in specs]  # the serial order
    finished: dict = {}

    def finish(index: int, record: dict, log_probs) -> None:
        """A run is done: keep it (runs stay in the serial order) and write the results."""
        spec, seed = tasks[index]
        finished[index] = record
        runs[:] = [finished[i] for i in sorted(finished)]
        if run_cfg.save_predictions and log_probs is not None:
            write_predictions(
                os.path.join(out_dir, "predictions", f"{safe_name(spec.label)}-seed{seed}.csv"),
                data.test.rows,
                data.test.groups,
                data.test.y.numpy(),
                log_probs,
                data.class_names,
            )
        save()

    jobs = min(n_jobs, total)
    try:
        if jobs > 1:
            from .parallel import run_parallel

            bar = _progress_bar(run_cfg.quiet, rows_per_run * total, f"{total} runs in {jobs} processes")
            try:
                run_parallel(jobs, tasks, config, data, cfg, bar, rows_per_run, finish)
            finally:
                if bar is not None:
                    bar.close()
        for index, (spec, seed) in enumerate(tasks if jobs == 1 else []):
            bar = _progress_bar(
                run_cfg.quiet, rows_per_run, f"[{index + 1}/{total}] {spec.label} seed {seed}"
            )
            try:
                record, log_probs, model = train_one(data, spec, seed, cfg, bar=bar, factory=factory, ctx=ctx)
            finally:
                if bar is not None:
                    bar.close()
            if run_cfg.save_models is not None and record["status"] == "done":
                record["saved"] = save_model(
                    model, run_cfg.save_models, f"{safe_name(spec.label)}-seed{seed}", data.example_rows()
                )
            finish(index, record, log_probs)
    except KeyboardInterrupt:
        payload["interrupted"] = True
        save()
        if not ctx.main:
            return 130
        plots = [] if run_cfg.no_plots or not runs else plot_results(out_dir, runs, labels, title)
        print(
            f"\ntorch-sugar compare: interrupted; kept the {len(runs)} finished run(s) of {total} "
            f"in {json_path}" + (f" and {len(plots)} plot(s)" if plots else ""),
            file=sys.stderr,
        )
        return 130

    payload["complete"] = True
    save()
    if not ctx.main:
        return 0
    print(f"{title}, test set of {d['n_test']} rows\n")
    print(format_tables(payload["summary"], runs, len(seeds)))
    plots = [] if run_cfg.no_plots else plot_results(out_dir, runs, labels, title)
    print(f"\nresults: {json_path}, {csv_path}")
    if run_cfg.save_models is not None:
        print(f"models:  {run_cfg.save_models}/ (state_dict and TorchScript per run, preprocessing.json)")
    if plots:
        print("plots:   " + ", ".join(plots))
    elif not run_cfg.no_plots:
        print("plots:   skipped (matplotlib is not installed)")
    return 0
