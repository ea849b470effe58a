"""``compare --script``'s summaries, table, results.csv and learning curves: the same statistics
as for models (mean ± std over seeds; paired differences to the baseline with a t-test and the
seeds better/tied/worse), over whatever metrics the script reported."""

import csv
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from .report import _fmt, _style, _table, paired_comparison, per_activation_stats, plot_band

#: A metric whose name matches this is better when lower (unless --lower-is-better lists it anyway).
LOWER_IS_BETTER = re.compile(
    r"loss|error|err\b|err_|mse|mae|rmse|nll|perplexity|ppl|time|seconds|dead|dormant", re.I
)
#: Panels of learning_curves.png at most (the metrics first reported, in order).
MAX_PANELS = 8


def metric_names(runs: Sequence[dict]) -> List[str]:
    """Every metric of the finished runs' selected reports, in the order first reported."""
    names: Dict[str, None] = {}
    for run in runs:
        if run["status"] == "done":
            names.update(dict.fromkeys(run["metrics"]))
    return list(names)


def higher_is_better(metric: str, lower: Sequence[str]) -> bool:
    return metric not in lower and not LOWER_IS_BETTER.search(metric)


def summarize_reports(
    runs: Sequence[dict], labels: Sequence[str], baseline: Optional[str], lower: Sequence[str] = ()
) -> dict:
    """Per activation: mean and sample std over seeds of every reported metric (the selected
    report of each finished run); per other activation: paired differences to the baseline."""
    metrics = metric_names(runs)
    per_activation = per_activation_stats(runs, labels, metrics, lambda r, m: r["metrics"].get(m), "failed")
    versus: Dict[str, dict] = {}
    if baseline is not None:
        done = [r for r in runs if r["status"] == "done"]
        base = {r["seed"]: r for r in done if r["activation"] == baseline}
        for label in labels:
            if label != baseline:
                other = {r["seed"]: r for r in done if r["activation"] == label}
                versus[label] = {
                    m: paired_comparison(
                        base, other, lambda r, m=m: r["metrics"].get(m), higher_is_better(m, lower)
                    )
                    for m in metrics
                }
    directions = {m: "higher" if higher_is_better(m, lower) else "lower" for m in metrics}
    return {
        "baseline": baseline,
        "metrics": metrics,
        "better_when": directions,
        "activations": per_activation,
        "vs_baseline": versus,
    }


def format_report_tables(
    summary: dict, runs: Sequence[dict], seeds_total: int, select_by: Optional[str]
) -> str:
    metrics = summary["metrics"]
    header = ["activation", *metrics, "s/run", "runs"]
    rows = []
    for label, entry in summary["activations"].items():
        seconds = [r["seconds"] for r in runs if r["activation"] == label and r["status"] == "done"]
        runs_text = f"{entry['done']}/{seeds_total}" + (
            f" ({entry['failed']} failed)" if entry["failed"] else ""
        )
        rows.append(
            [label]
            + [_fmt(entry[m]["mean"], entry[m]["std"]) for m in metrics]
            + [f"{np.mean(seconds):.1f}" if seconds else "-", runs_text]
        )
    which = (
        "each run's last report"
        if select_by is None
        else f"each run's report with the {select_by.replace(':', ' ')}"
    )
    out = [_table(header, rows), f"reported metrics of {which}; mean ± std over seeds"]
    if summary["vs_baseline"]:
        out.append(
            f"\nDifference to {summary['baseline']}, paired by seed: mean ± std of the per-seed differences, "
            "two-sided paired t-test p, [seeds better/tied/worse] (better: "
            + ", ".join(f"{m} {d}" for m, d in summary["better_when"].items())
            + ")"
        )
        rows = [
            [label] + [_difference(entry[m]) for m in metrics]
            for label, entry in summary["vs_baseline"].items()
        ]
        out.append(_table(["activation"] + [f"Δ {m}" for m in metrics], rows))
    failed = [r for r in runs if r["status"] != "done"]
    if failed:
        out.append("\nFailed runs (left out of the statistics; logs in --out/runs/):")
        for run in failed:
            out.append(f"  {run['activation']} seed {run['seed']}: {run['error']} ({run['log']})")
            out.extend(f"    | {line}" for line in run.get("stderr_tail", [])[-5:])
    return "\n".join(out)


def _difference(test: dict) -> str:
    if test["n"] == 0:
        return "-"
    text = f"{test['diff_mean']:+.4f}"
    if test["diff_std"] is not None:
        text += f" ± {test['diff_std']:.4f}"
    if test["p"] is None:
        text += " p=n/a"
    else:
        text += " p<0.001" if test["p"] < 0.001 else f" p={test['p']:.3f}"
    return text + f" [{test['better']}/{test['tied']}/{test['worse']}]"


def write_reports_csv(path: str, runs: Sequence[dict]) -> None:
    """results.csv: one row per run, the selected report's metrics as columns."""
    metrics = metric_names(runs)
    fields = ["activation", "seed", "status", "exit_code", "seconds", "selected_report", *metrics, "log"]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        for run in runs:
            row = {k: run.get(k) for k in fields}
            row.update(run["metrics"])
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    os.replace(tmp, path)


def _report_curve(runs: Sequence[dict], label: str, metric: str):
    """(steps, mean, min, max) of a metric over the reports of one activation's finished runs, at
    the steps every run reported it."""
    series = []
    for run in runs:
        if run["activation"] == label and run["status"] == "done":
            series.append({r["step"]: r["metrics"][metric] for r in run["reports"] if metric in r["metrics"]})
    if not series:
        return None
    steps = sorted(set.intersection(*(set(s) for s in series)))
    if not steps:
        return None
    arr = np.array([[s[step] for step in steps] for s in series], dtype=float)
    return np.array(steps), arr.mean(0), arr.min(0), arr.max(0)


def plot_report_curves(out_dir: str, runs: Sequence[dict], labels: Sequence[str], title: str) -> List[str]:
    """learning_curves.png: one panel per reported metric (at most MAX_PANELS), mean over seeds,
    band = min..max, x = the reports' steps; [] without matplotlib or metrics."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    metrics = metric_names(runs)[:MAX_PANELS]
    if not metrics:
        return []
    fig = Figure(figsize=(4.2 * len(metrics), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    styles = {label: _style(i) for i, label in enumerate(labels)}
    for ax, metric in zip(axes, metrics):
        for label in labels:
            plot_band(ax, label, _report_curve(runs, label, metric), styles[label])
        ax.set_title(metric)
        ax.set_xlabel("step (report)")
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[1]:
        axes[0].legend(fontsize="small")
    fig.suptitle(f"{title}\nreported metrics, mean over seeds, band = min..max")
    path = os.path.join(out_dir, "learning_curves.png")
    fig.savefig(path, dpi=110)
    return [path]
