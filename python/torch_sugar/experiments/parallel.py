"""``--jobs N``: the independent (activation, seed) runs of ``torch-sugar compare`` in N worker
processes.

The workers are processes started with the ``spawn`` method of :mod:`torch.multiprocessing`
(fork is unsafe once torch has started threads, and CUDA needs spawn); each takes the next run
from a shared counter until none is left.
Each worker receives the task kind once (:class:`~.tasks.ModelTasks`: the prepared
:class:`~.data.Data`, whose tensors travel through shared memory, torch's multiprocessing
reductions; a ``--stream`` table travels as its source, plan and fitted encoder, and each worker
reads the files itself), prepares its process as the serial path does (``--threads`` per worker,
deterministic kernels) and runs whole tasks with :func:`~.tasks.run_task`, which seeds everything
from the run's seed. So a run gives the same numbers, bit for bit on the CPU, whichever process
trains it; the parent puts the finished runs back in the serial order.

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
from typing import Callable, Dict, List, Sequence

import torch.multiprocessing as mp

from .errors import UsageError
from .tasks import Task, TaskKind, TaskResult, run_task

#: Seconds between two progress messages of one worker.
PROGRESS_INTERVAL = 0.25


class _QueueBar:
    """What a task needs of a tqdm bar (``update``, ``set_postfix_str``), sending row counts to
    the parent."""

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


def _run_reporting(kind: TaskKind, task: Task, channel) -> TaskResult:
    bar = _QueueBar(channel, task.index) if channel is not None else None
    try:
        return run_task(kind, task, bar)
    finally:
        if bar is not None:
            bar.flush()
            channel.put(("done", task.index, 0, None))


def _worker_main(kind: TaskKind, tasks: List[Task], counter, results, channel) -> None:
    """A worker process: takes the next task from ``counter`` until none is left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        kind.prepare_process()
        while True:
            with counter.get_lock():
                position = counter.value
                counter.value += 1
            if position >= len(tasks):
                break
            results.put(_run_reporting(kind, tasks[position], channel))
    except BaseException as exc:  # reported to the parent, which stops every worker
        results.put(exc)


def _drive_bar(bar, channel, per_task: int, total_tasks: int, stop: threading.Event) -> None:
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
                bar.set_postfix_str(f"{done}/{total_tasks} runs done; last: {postfix}", refresh=False)
        else:  # a run ended (early stopping, divergence): count the rows it did not train
            done += 1
            bar.update(max(0, per_task - counted.pop(index, 0)))
            bar.set_postfix_str(f"{done}/{total_tasks} runs done", refresh=False)


def _next_result(results, workers) -> TaskResult:
    """The next finished task; a worker's exception is raised here, and so is a worker that died."""
    while True:
        try:  # a timeout keeps the wait interruptible by Ctrl-C
            item = results.get(timeout=0.2)
            break
        except queue.Empty:
            codes = [w.exitcode for w in workers]
            if any(c not in (None, 0) for c in codes) or all(c is not None for c in codes):
                raise UsageError(
                    f"--jobs: a worker process ended without its results (exit codes {codes}); stopped every worker"
                )
    if isinstance(item, BaseException):
        raise item
    return item


def run_parallel(
    jobs: int, kind: TaskKind, tasks: Sequence[Task], bar, on_result: Callable[[TaskResult], None]
) -> None:
    """Runs ``tasks`` in ``jobs`` spawned workers; calls ``on_result(result)`` in the parent as
    each finishes (in any order).

    The workers take the next task from a shared counter, so the parent holds no lock a worker
    might hold. KeyboardInterrupt: terminates the workers and re-raises; the runs reported so far
    are kept by the caller. An exception in a worker (e.g. a ``--model-fn`` error) or a worker
    that dies also stops every worker and is raised here."""
    ctx = mp.get_context("spawn")
    channel = ctx.Queue() if bar is not None else None
    results, counter, stop = ctx.Queue(), ctx.Value("l", 0), threading.Event()
    thread = None
    if bar is not None:
        thread = threading.Thread(
            target=_drive_bar, daemon=True, args=(bar, channel, kind.progress_total, len(tasks), stop)
        )
        thread.start()
    workers = [
        ctx.Process(target=_worker_main, daemon=True, args=(kind, list(tasks), counter, results, channel))
        for _ in range(min(jobs, len(tasks)))
    ]
    try:
        for w in workers:
            w.start()
        for _ in range(len(tasks)):
            on_result(_next_result(results, workers))
        for w in workers:
            w.join()
    finally:
        _stop(workers, thread, stop, (channel, results))


def _stop(workers, thread, stop: threading.Event, queues) -> None:
    for w in workers:
        if w.is_alive():
            w.terminate()
    for w in workers:
        if w.pid is not None:
            w.join()
    stop.set()
    if thread is not None:
        thread.join()
    for q in queues:
        if q is not None:
            q.close()
            q.cancel_join_thread()
