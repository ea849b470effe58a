"""``compare --script``: the tasks of a comparison run the user's training script, unchanged.

Each (activation, seed) task runs the script as a child process under ``torch-sugar run`` with
that activation and seed (``python -m torch_sugar run --surrogate S [--alpha A] [--negative-only]
--seed N SCRIPT ARGS``), in its own folder ``--out/runs/<activation>-seed<N>``, its stdout and
stderr in ``log.txt`` there. The script's ``torch_sugar.report(...)`` calls append to
``reports.jsonl`` in that folder (the environment variable ``TORCH_SUGAR_REPORT_FILE`` says
where); the run's record keeps every report, and the selected one (the last, or the best by
``--select-by METRIC:min|max``) is what the statistics use.

:class:`ScriptTasks` is a task kind (:class:`~.tasks.TaskKind`): ``--resume`` and results.json
work as for models. ``--jobs N`` runs N children at a time from threads of this process (the work
is in the children). The children start in a session of their own, so a terminal's Ctrl-C reaches
only compare, which stops them (SIGTERM, then SIGKILL) and keeps the finished runs.
"""

import collections
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .._report import REPORT_FILE_ENV
from . import distributed
from .activations import ActivationSpec
from .errors import UsageError
from .tasks import Task, TaskResult

#: Lines of a failed run's stderr kept in its record (and shown in the table's notes).
STDERR_TAIL = 12
#: Seconds a child gets to end after SIGTERM before SIGKILL.
TERMINATE_GRACE = 5.0
_PYTHON = re.compile(r"^python[0-9.]*$")


def script_argv(command: str) -> List[str]:
    """The program part of ``--script``'s command: ``python train.py ARGS`` -> ``[train.py ARGS]``
    with the script's path made absolute (the runs work in their own folders), ``python -m MOD
    ARGS`` -> ``[-m MOD ARGS]``, ``train.py ARGS`` likewise. Raises UsageError for anything else."""
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--script: cannot split {command!r} as a shell would: {exc}") from None
    if tokens and (_PYTHON.match(os.path.basename(tokens[0])) or tokens[0] == sys.executable):
        tokens = tokens[1:]
    if not tokens:
        raise UsageError(f"--script: no program in {command!r}; e.g. --script 'python train.py --epochs 10'")
    if tokens[0] == "-m":
        if len(tokens) < 2:
            raise UsageError(f"--script: -m needs a module name in {command!r}")
        return tokens
    if tokens[0].startswith("-"):
        raise UsageError(
            f"--script: Python option {tokens[0]!r} in {command!r}: only `python SCRIPT.py ARGS` and "
            "`python -m MODULE ARGS` are run (each under `torch-sugar run`)"
        )
    if not tokens[0].endswith(".py") and not os.path.isfile(tokens[0]):
        raise UsageError(
            f"--script: {command!r} does not run a Python script; give `python SCRIPT.py ARGS` or "
            "`python -m MODULE ARGS`"
        )
    if not os.path.isfile(tokens[0]):
        raise UsageError(f"--script: no such file: {tokens[0]}")
    return [os.path.abspath(tokens[0]), *tokens[1:]]


def run_options(spec: ActivationSpec, seed: int) -> List[str]:
    """``torch-sugar run``'s options for one task."""
    if spec.kind == "plain":
        raise UsageError(
            f"--activations {spec.label}: a plain activation cannot be put into a script (only ReLUs can "
            "be made SUGAR from outside); with --script use relu and SUGAR activations"
        )
    options = ["--surrogate", "relu" if spec.kind == "relu" else spec.surrogate]
    if spec.alpha is not None:
        options += ["--alpha", repr(spec.alpha)]
    if spec.negative_only:
        options.append("--negative-only")
    return options + ["--seed", str(seed)]


def read_reports(path: str) -> Tuple[List[dict], int]:
    """The records of a run's reports.jsonl (``index`` added; ``step`` None -> the index), and the
    number of unreadable lines (a write cut short by a crash)."""
    reports, bad = [], 0
    if not os.path.exists(path):
        return reports, bad
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
                metrics = {str(k): float(v) for k, v in record["metrics"].items()}
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += 1
                continue
            index = len(reports)
            step = record.get("step")
            reports.append({"index": index, "step": index if step is None else step, "metrics": metrics})
    return reports, bad


def select_report(reports: Sequence[dict], select_by: Optional[str]) -> Tuple[Optional[int], Optional[str]]:
    """(index of the report whose metrics count, why none), by ``METRIC:min|max`` or the last."""
    if not reports:
        return None, "reported nothing: call torch_sugar.report(name=value, ...) in the script"
    if select_by is None:
        return len(reports) - 1, None
    metric, _, direction = select_by.rpartition(":")
    having = [r for r in reports if metric in r["metrics"]]
    if not having:
        names = sorted({m for r in reports for m in r["metrics"]})
        return (
            None,
            f"--select-by {select_by}: the script never reported {metric!r} (it reported {', '.join(names)})",
        )
    pick = min if direction == "min" else max
    return pick(having, key=lambda r: r["metrics"][metric])["index"], None


class _Child:
    """One running script: the process, its log, the tail of its stderr."""

    def __init__(self, argv: List[str], cwd: str, env: Dict[str, str], log_path: str):
        self.log = open(log_path, "wb")
        self.lock = threading.Lock()
        self.stderr_tail: "collections.deque[str]" = collections.deque(maxlen=STDERR_TAIL)
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        self.pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, False), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, True), daemon=True),
        ]
        for pump in self.pumps:
            pump.start()

    def _pump(self, stream, is_stderr: bool) -> None:
        for line in iter(stream.readline, b""):
            with self.lock:
                self.log.write(line)
                self.log.flush()
            if is_stderr:
                self.stderr_tail.append(line.decode("utf-8", "replace").rstrip("\n"))
        stream.close()

    def wait(self, timeout: Optional[float]) -> Optional[int]:
        """The exit code; None when the timeout passed (the child is stopped)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            code = None
        self.close()
        return code

    def close(self) -> None:
        """Waits for the output to be written, then closes the log."""
        for pump in self.pumps:
            pump.join()
        self.log.close()

    def stop(self) -> None:
        """SIGTERM to the child's session, SIGKILL after a grace period."""
        if self.proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, TERMINATE_GRACE), (signal.SIGKILL, None)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue


class ScriptTasks:
    """Tasks that run the user's script (a task kind, see :mod:`.tasks`)."""

    progress_total = 1  # a task is one run; the bar counts runs

    def __init__(self, command: str, out_dir: str, select_by: Optional[str], timeout: Optional[float]):
        self.command = command
        self.program = script_argv(command)
        self.out_dir = os.path.abspath(out_dir)
        self.select_by, self.timeout = select_by, timeout
        self.cwd = os.getcwd()  # -m MODULE and the script's own imports resolve from here too
        self._children: Dict[int, _Child] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_children"], state["_lock"] = {}, None
        return state

    def prepare_process(self) -> None:
        pass

    def argv(self, task: Task) -> List[str]:
        """The child's command line: ``{seed}`` and ``{activation}`` in the program's arguments
        become the run's (a script that seeds itself from its own --seed needs its seed there)."""
        program = [
            a.replace("{seed}", str(task.seed)).replace("{activation}", task.label) for a in self.program
        ]
        return [
            sys.executable,
            "-m",
            "torch_sugar",
            "run",
            *run_options(task.activation, task.seed),
            *program,
        ]

    def run_dir(self, task: Task) -> str:
        return os.path.join(self.out_dir, "runs", task.stem)

    def _environment(self, reports: str) -> Dict[str, str]:
        env = dict(os.environ)
        env[REPORT_FILE_ENV] = reports
        env["PYTHONUNBUFFERED"] = "1"  # the log fills as the script prints
        env["PYTHONPATH"] = os.pathsep.join(p for p in (self.cwd, env.get("PYTHONPATH")) if p)
        return env

    def run(self, task: Task, bar=None, ctx: distributed.Context = distributed.SINGLE) -> TaskResult:
        """Runs the script for one task; the record of a run that failed says why."""
        folder = self.run_dir(task)
        os.makedirs(folder, exist_ok=True)
        log, reports_path = os.path.join(folder, "log.txt"), os.path.join(folder, "reports.jsonl")
        if os.path.exists(reports_path):
            os.remove(reports_path)  # a run started again (--resume) starts its reports afresh
        argv = self.argv(task)
        start = time.perf_counter()
        child = _Child(argv, folder, self._environment(reports_path), log)
        with self._lock:
            self._children[task.index] = child
        try:
            code = child.wait(self.timeout)
        except BaseException:  # Ctrl-C in the serial loop: the child must not outlive compare
            child.stop()
            child.close()
            raise
        finally:
            with self._lock:
                self._children.pop(task.index, None)
        record = self._record(task, argv, code, time.perf_counter() - start, log, reports_path, child)
        if bar is not None:
            bar.update(1)
        return TaskResult(task.index, record)

    def _record(self, task, argv, code, seconds, log, reports_path, child) -> dict:
        reports, unreadable = read_reports(reports_path)
        selected, why = select_report(reports, self.select_by)
        failed = code != 0 or selected is None
        if code is None:
            why = f"stopped after --timeout {self.timeout:g} s"
        elif code != 0:
            why = f"exit code {code}" + (" (killed by a signal)" if code < 0 else "")
        return {
            "activation": task.label,
            "seed": task.seed,
            "status": "failed" if failed else "done",
            "error": why if failed else None,
            "stderr_tail": list(child.stderr_tail) if failed else [],
            "exit_code": code,
            "seconds": seconds,
            "command": argv,
            "log": os.path.relpath(log, self.out_dir),
            "reports": reports,
            "unreadable_reports": unreadable,
            "selected_report": selected,
            "metrics": reports[selected]["metrics"] if selected is not None else {},
        }

    def write_predictions(self, path: str, result: TaskResult) -> None:
        pass  # the script writes what it writes, in its run's folder

    def stop_all(self) -> None:
        with self._lock:
            children = list(self._children.values())
        for child in children:
            child.stop()

    def run_parallel(
        self, jobs: int, tasks: Sequence[Task], bar, on_result: Callable[[TaskResult], None]
    ) -> None:
        """``jobs`` runs at a time (threads of this process wait on the children); ``on_result``
        in this thread as each finishes. KeyboardInterrupt stops every child and re-raises."""
        from .tasks import run_task

        pool = ThreadPoolExecutor(max_workers=jobs)
        pending = {pool.submit(run_task, self, task, bar) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    on_result(future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            self.stop_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
