"""results.json and results.csv of a comparison: written after every finished run (Ctrl-C keeps
them), with the whole configuration, so that ``--config results.json`` re-creates the run; and
``--resume``, which keeps the finished runs of an interrupted comparison's results.json when the
configuration, the versions and the data are those of this one."""

import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .config import CompareConfig, differences
from .errors import UsageError
from .report import clean, summarize, write_csv, write_json
from .tasks import Task, TaskResult


class ResultsFile:
    """The results of the tasks of one comparison, in the serial order; ``writes``: this process
    writes the files (rank 0 under torchrun)."""

    def __init__(
        self,
        out_dir: str,
        payload: dict,
        labels: Sequence[str],
        baseline: Optional[str],
        writes: bool,
        summarizer: Callable[[Sequence[dict], Sequence[str], Optional[str]], dict] = summarize,
        csv_writer: Callable[[str, Sequence[dict]], None] = write_csv,
    ):
        self.json_path = os.path.join(out_dir, "results.json")
        self.csv_path = os.path.join(out_dir, "results.csv")
        self.payload, self.labels, self.baseline, self.writes = payload, list(labels), baseline, writes
        # how the runs are summarized and tabled: a model's metrics, or a script's reports
        self.summarizer, self.csv_writer = summarizer, csv_writer
        self.records: Dict[int, dict] = {}
        self.started = time.perf_counter()

    @property
    def runs(self) -> List[dict]:
        return self.payload["runs"]

    def keep(self, records: Dict[int, dict], previous: dict) -> None:
        """``--resume``: the finished runs of ``previous`` (results.json), by task index."""
        self.records.update(records)
        self.payload["resumed"] = {"kept_runs": len(records), "first_created": previous.get("created")}
        self.runs[:] = [self.records[i] for i in sorted(self.records)]

    def add(self, result: TaskResult) -> None:
        """A run is done: keep it (the runs stay in the serial order) and write the files."""
        self.records[result.index] = result.record
        self.runs[:] = [self.records[i] for i in sorted(self.records)]
        self.save()

    def save(self, complete: bool = False, interrupted: bool = False) -> None:
        self.payload["complete"], self.payload["interrupted"] = complete, interrupted
        if not self.writes:
            return
        self.payload["summary"] = self.summarizer(self.runs, self.labels, self.baseline)
        self.payload["wall_seconds"] = time.perf_counter() - self.started
        write_json(self.json_path, self.payload)
        self.csv_writer(self.csv_path, self.runs)


def previous_runs(
    path: str, config: CompareConfig, payload: dict, tasks: Sequence[Task]
) -> Tuple[Dict[int, dict], dict]:
    """``--resume``: the finished runs recorded in ``path`` (an earlier results.json of this
    comparison) by task index, and that file's contents; ({}, {}) when there is no such file
    yet. Raises UsageError when the
    file belongs to another comparison: another configuration (naming the settings that differ),
    other versions or other data."""
    if not os.path.exists(path):
        return {}, {}
    try:
        with open(path) as f:
            stored = json.load(f)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume: cannot read {path}: {exc}") from None
    if not isinstance(stored, dict) or stored.get("tool") != payload["tool"] or "config" not in stored:
        raise UsageError(f"--resume: {path} is not the results.json of a torch-sugar compare run")
    where = f"--resume: {path} is another comparison"
    changed = differences(stored["config"], config)
    if changed:
        raise UsageError(
            f"{where}: {'; '.join(changed)}; leave --resume out (or use another --out) to start over"
        )
    for key, what in (("version", "torch-sugar"), ("torch", "torch")):
        if stored.get(key) != payload[key]:
            raise UsageError(
                f"{where}: written with {what} {stored.get(key)}, this is {what} {payload[key]} (the numbers "
                "would not be comparable); leave --resume out to start over"
            )
    data = json.loads(json.dumps(clean(payload["data"])))
    changed = sorted(k for k in data if stored.get("data", {}).get(k) != data[k])
    if changed:
        raise UsageError(
            f"{where}: its data differ in {', '.join(changed)}; leave --resume out to start over"
        )
    by_run = {(t.label, t.seed): t.index for t in tasks}
    kept = {
        by_run[(r.get("activation"), r.get("seed"))]: r
        for r in stored.get("runs", [])
        if (r.get("activation"), r.get("seed")) in by_run
    }
    return kept, stored
