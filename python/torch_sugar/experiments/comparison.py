"""What a comparison set up in this process is (:class:`Comparison`), shared by the model runs
(:mod:`.compare`) and the script runs (:mod:`.script_compare`): the parsed activations, the
``--resume`` step and the log."""

from dataclasses import dataclass
from typing import List, Optional

from . import distributed
from .activations import ActivationSpec, parse_activations
from .config import CompareConfig
from .data import Data
from .errors import UsageError
from .results import ResultsFile, previous_runs
from .tasks import ModelTasks, Task


def _log(quiet: bool, *lines: str) -> None:
    if not quiet:
        for line in lines:
            print(line, flush=True)


@dataclass
class Comparison:
    """A comparison set up in this process: its config, the activations, the data, the task kind
    and the tasks (in the serial order), the output folder."""

    config: CompareConfig
    ctx: distributed.Context
    specs: List[ActivationSpec]
    baseline: Optional[str]
    data: Optional[Data]  # None for --script
    kind: ModelTasks  # or script_tasks.ScriptTasks
    model_text: str
    out_dir: str
    tasks: List[Task]

    @property
    def labels(self) -> List[str]:
        return [s.label for s in self.specs]

    @property
    def title(self) -> str:
        t, seeds = self.config.training, self.config.comparison.seeds
        n_seeds = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
        if self.data is None:  # --script: the model text is the script's command
            return f"{self.model_text}, {n_seeds}"
        return f"{self.data.name}: {self.model_text}, {t.optimizer} lr {t.lr:g}, {t.epochs} epochs, {n_seeds}"


def _activations(config: CompareConfig):
    """The parsed --activations and the baseline (None with one activation)."""
    comparison = config.comparison
    specs = parse_activations(comparison.activations, comparison.negative_only)
    labels = [s.label for s in specs]
    baseline = comparison.baseline
    if baseline is not None and baseline not in labels:
        raise UsageError(f"--baseline: {baseline!r} is not one of --activations ({', '.join(labels)})")
    if baseline is None:
        baseline = "relu" if "relu" in labels else labels[0]
    return specs, (None if len(labels) == 1 else baseline)


def _resume(c: Comparison, results: ResultsFile) -> List[str]:
    """``--resume``: keeps the finished runs of the output folder's results.json (rank 0 reads it;
    every rank skips the same tasks). Returns the lines to log."""
    error, kept, previous = None, {}, {}
    if c.ctx.main:
        try:
            kept, previous = previous_runs(results.json_path, c.config, results.payload, c.tasks)
        except UsageError as exc:
            error = str(exc)
    distributed.agree(c.ctx, error)
    kept = distributed.share(c.ctx, kept)
    if not kept:
        return [f"  --resume: no finished run in {results.json_path} yet; running all {len(c.tasks)}"]
    results.keep(kept, previous)
    return [
        f"  --resume: kept the {len(kept)} finished run(s) of {results.json_path}; {len(c.tasks) - len(kept)} left"
    ]
