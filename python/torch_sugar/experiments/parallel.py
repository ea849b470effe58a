"""``--jobs N``: the independent (activation, seed) runs of ``torch-sugar compare`` in N worker
processes.

The workers are processes started with the ``spawn`` method of :mod:`torch.multiprocessing`
(fork is unsafe once torch has started threads, and CUDA needs spawn); each takes the next run
from a shared counter until none is left.
Each worker receives the prepared :class:`~.data.Data` once (its tensors travel through shared
memory, torch's multiprocessing reductions), sets its own thread count (``--threads`` per worker)
and deterministic kernels exactly as the serial path does, and trains whole runs with
:func:`~.train.train_one`, which seeds everything from the run's seed. So a run gives the same
numbers, bit for bit on the CPU, whichever process trains it; the parent puts the finished runs
back in the serial order (seed by seed, activation by activation).

Progress: the workers send their trained row counts (at most a few messages a second each) through one
queue to a thread of the parent that drives one progress bar for all runs.

Ctrl-C: the workers ignore SIGINT (a terminal sends it to the whole process group); the parent
catches it, terminates the workers (the runs in flight are lost) and keeps the finished runs, like
the serial path.
"""

import queue
import signal
import threading
import time
from typing import Callable, Dict, Sequence, Tuple

import torch.multiprocessing as mp

from .activations import ActivationSpec
from .errors import UsageError

#: Seconds between two progress messages of one worker.
PROGRESS_INTERVAL = 0.25

_WORKER: dict = {}


class _QueueBar:
    """What :func:`~.train.train_one` needs of a tqdm bar, sending row counts to the parent."""

    def __init__(self, channel, index: int):
        self.channel, self.index = channel, index
        self.pending, self.postfix, self.last = 0, None, time.monotonic()

    def update(self, n: int = 1) -> None:
        self.pending += n
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL:
            self.flush()
            self.last = now

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def flush(self) -> None:
        if self.pending or self.postfix is not None:
            self.channel.put(("rows", self.index, self.pending, self.postfix))
            self.pending, self.postfix = 0, None


def _run_task(index: int, spec: ActivationSpec, seed: int):
    from .report import safe_name
    from .train import train_one
    from .user_model import save_model

    w = _WORKER
    bar = _QueueBar(w["channel"], index) if w["channel"] is not None else None
    try:
        record, log_probs, model = train_one(w["data"], spec, seed, w["cfg"], bar=bar, factory=w["factory"])
    finally:
        if bar is not None:
            bar.flush()
            w["channel"].put(("done", index, 0, None))
    save_dir = w["config"].run.save_models
    if save_dir is not None and record["status"] == "done":
        record["saved"] = save_model(
            model, save_dir, f"{safe_name(spec.label)}-seed{seed}", w["data"].example_rows()
        )
    return index, record, log_probs


def _worker_main(config, data, cfg, tasks, counter, results, channel) -> None:
    """A worker process: takes the next task index from ``counter`` until none is left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from .compare import set_determinism
        from .user_model import model_factory

        set_determinism(config.run.device, config.run.threads)
        factory = None
        if config.model.model_fn is not None:
            factory, _ = model_factory(config.model.model_fn, data.spec, data.n_classes, data.example_rows())
        _WORKER.update(config=config, data=data, cfg=cfg, channel=channel, factory=factory)
        while True:
            with counter.get_lock():
                index = counter.value
                counter.value += 1
            if index >= len(tasks):
                break
            results.put(_run_task(index, *tasks[index]))
    except BaseException as exc:  # reported to the parent, which stops every worker
        results.put(exc)


def _drive_bar(bar, channel, rows_per_run: int, total_runs: int, stop: threading.Event) -> None:
    """The parent's progress thread: one bar for all runs."""
    counted: Dict[int, int] = {}
    done = 0
    while True:
        try:
            kind, index, n, postfix = channel.get(timeout=0.2)
        except queue.Empty:
            if stop.is_set():  # the workers are gone and every message is read
                return
            continue
        except (EOFError, OSError):
            return
        if kind == "rows":
            counted[index] = counted.get(index, 0) + n
            bar.update(n)
            if postfix is not None:
                bar.set_postfix_str(f"{done}/{total_runs} runs done; last: {postfix}", refresh=False)
        else:  # a run ended (early stopping, divergence): count the rows it did not train
            done += 1
            bar.update(max(0, rows_per_run - counted.pop(index, 0)))
            bar.set_postfix_str(f"{done}/{total_runs} runs done", refresh=False)


def run_parallel(
    jobs: int,
    tasks: Sequence[Tuple[ActivationSpec, int]],
    config,
    data,
    cfg,
    bar,
    rows_per_run: int,
    on_result: Callable[[int, dict, object], None],
) -> None:
    """Trains ``tasks`` (activation, seed) in ``jobs`` spawned workers; calls
    ``on_result(index, record, log_probs)`` in the parent as each run finishes (in any order).

    The workers take the next task from a shared counter, so the parent holds no lock a worker
    might hold. KeyboardInterrupt: terminates the workers and re-raises; the runs reported so far
    are kept by the caller. An exception in a worker (e.g. a ``--model-fn`` error) or a worker
    that dies also stops every worker and is raised here."""
    ctx = mp.get_context("spawn")
    channel = ctx.Queue() if bar is not None else None
    results = ctx.Queue()
    counter = ctx.Value("l", 0)
    stop = threading.Event()
    thread = None
    if bar is not None:
        thread = threading.Thread(
            target=_drive_bar, daemon=True, args=(bar, channel, rows_per_run, len(tasks), stop)
        )
        thread.start()
    workers = [
        ctx.Process(
            target=_worker_main, daemon=True, args=(config, data, cfg, list(tasks), counter, results, channel)
        )
        for _ in range(min(jobs, len(tasks)))
    ]
    try:
        for w in workers:
            w.start()
        for _ in range(len(tasks)):
            while True:
                try:  # a timeout keeps the wait interruptible by Ctrl-C
                    item = results.get(timeout=0.2)
                    break
                except queue.Empty:
                    codes = [w.exitcode for w in workers]
                    if any(c not in (None, 0) for c in codes) or all(c is not None for c in codes):
                        raise UsageError(
                            f"--jobs: a worker process ended without its results "
                            f"(exit codes {codes}); stopped every worker"
                        )
            if isinstance(item, BaseException):
                raise item
            on_result(*item)
        for w in workers:
            w.join()
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
        for w in workers:
            if w.pid is not None:
                w.join()
        stop.set()
        if thread is not None:
            thread.join()
        for q in (channel, results):
            if q is not None:
                q.close()
                q.cancel_join_thread()
