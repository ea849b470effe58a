"""Summaries over seeds, the terminal tables, and the files of ``--out``: results.json,
results.csv, predictions/*.csv and the PNG plots (matplotlib's Agg renderer, no display needed).
"""

import csv
import json
import math
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from .metrics import paired_test

#: Metrics summarized per activation: name -> (label in tables, higher is better).
METRICS = {
    "loss": ("loss", False),
    "accuracy": ("accuracy", True),
    "auc": ("AUC", True),
    "pr_auc": ("PR-AUC", True),
    "uauc": ("uAUC", True),
    "dead_fraction_start": ("dead start", False),
    "dead_fraction_end": ("dead end", False),
    "dormant_fraction_start": ("dormant start", False),
    "dormant_fraction_end": ("dormant end", False),
    "epoch_seconds": ("s/epoch", False),
    "selected_epoch": ("epoch", False),
    "uauc_groups": ("uAUC groups", True),
}
COMPARED = ("loss", "accuracy", "auc", "pr_auc", "uauc", "dead_fraction_end", "dormant_fraction_end")
CSV_FIELDS = [
    "activation",
    "seed",
    "status",
    "loss",
    "accuracy",
    "auc",
    "pr_auc",
    "uauc",
    "uauc_groups",
    "dead_fraction_start",
    "dead_fraction_end",
    "dormant_fraction_start",
    "dormant_fraction_end",
    "selected_epoch",
    "epochs_run",
    "epoch_seconds",
    "train_seconds",
]


def clean(value):
    """JSON-safe copy: non-finite floats become None, numpy scalars plain Python."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    return value


# ------------------------------------------------------------------------------------ summary
def per_activation_stats(
    runs: Sequence[dict], labels: Sequence[str], metrics: Sequence[str], value, not_done: str
) -> Dict[str, dict]:
    """Per activation: its runs, finished ones and seeds, and the mean and sample std over seeds
    of each metric, ``value(run, metric)`` (None: not measured); ``not_done`` names the runs that
    did not finish (``diverged`` models, ``failed`` scripts)."""
    out: Dict[str, dict] = {}
    for label in labels:
        mine = [r for r in runs if r["activation"] == label]
        done = [r for r in mine if r["status"] == "done"]
        entry = {
            "runs": len(mine),
            "done": len(done),
            not_done: len(mine) - len(done),
            "seeds": [r["seed"] for r in done],
        }
        for metric in metrics:
            values = [v for v in (value(r, metric) for r in done) if v is not None]
            entry[metric] = {
                "n": len(values),
                "mean": float(np.mean(values)) if values else None,
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            }
        out[label] = entry
    return out


def summarize(runs: Sequence[dict], labels: Sequence[str], baseline: Optional[str]) -> dict:
    """Mean and sample std over seeds per activation; paired differences to the baseline."""
    per_activation = per_activation_stats(runs, labels, list(METRICS), lambda r, m: r.get(m), "diverged")
    versus: Dict[str, dict] = {}
    if baseline is not None:
        base = {r["seed"]: r for r in runs if r["activation"] == baseline and r["status"] == "done"}
        for label in labels:
            if label == baseline:
                continue
            other = {r["seed"]: r for r in runs if r["activation"] == label and r["status"] == "done"}
            versus[label] = {
                metric: paired_comparison(base, other, lambda r, m=metric: r.get(m), METRICS[metric][1])
                for metric in COMPARED
            }
    return {"baseline": baseline, "activations": per_activation, "vs_baseline": versus}


def paired_comparison(base: Dict[int, dict], other: Dict[int, dict], value, higher: bool) -> dict:
    """The paired test of one metric, ``value(run)``, between two activations' runs by seed
    ({seed: run}), with the seeds where ``other`` is better, tied and worse."""
    seeds = sorted(
        s for s in base.keys() & other.keys() if value(base[s]) is not None and value(other[s]) is not None
    )
    a = [value(base[s]) for s in seeds]
    b = [value(other[s]) for s in seeds]
    test = paired_test(a, b)
    # equal up to rounding: a tie, neither better nor worse
    ties = [abs(y - x) <= 1e-12 * max(abs(x), abs(y), 1.0) for x, y in zip(a, b)]
    test["better"] = sum(not t and ((y > x) if higher else (y < x)) for x, y, t in zip(a, b, ties))
    test["tied"] = sum(ties)
    test["worse"] = len(seeds) - test["better"] - test["tied"]
    test["seeds"] = seeds
    return test


# ------------------------------------------------------------------------------------ tables
def _fmt(mean: Optional[float], std: Optional[float], digits: int = 4, pct: bool = False) -> str:
    if mean is None:
        return "-"
    if pct:
        return f"{100 * mean:.1f}%" + ("" if std is None else f" ± {100 * std:.1f}")
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def _table(header: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def shown_metrics(runs: Sequence[dict]) -> List[str]:
    """loss and accuracy always; AUC, PR-AUC and uAUC when some run has them."""
    names = ["loss", "accuracy"]
    for metric in ("auc", "pr_auc", "uauc"):
        if any(r.get(metric) is not None for r in runs):
            names.append(metric)
    return names


def _uauc_label(runs: Sequence[dict]) -> str:
    """uAUC's column title with the number of groups it averaged over (those with both classes
    on the test rows; the same for every run unless a run diverged)."""
    counts = sorted({r["uauc_groups"] for r in runs if r.get("uauc_groups")})
    if not counts:
        return "uAUC"
    text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"uAUC ({text} groups)"


def format_tables(summary: dict, runs: Sequence[dict], seeds_total: int) -> str:
    metrics = shown_metrics(runs)
    names = {m: (_uauc_label(runs) if m == "uauc" else METRICS[m][0]) for m in metrics}
    header = (
        ["activation"] + [names[m] for m in metrics] + ["dead units start -> end", "epoch", "s/epoch", "runs"]
    )
    rows = []
    for label, entry in summary["activations"].items():
        cells = [label] + [_fmt(entry[m]["mean"], entry[m]["std"]) for m in metrics]
        start, end = entry["dead_fraction_start"], entry["dead_fraction_end"]
        cells.append(
            "-"
            if end["mean"] is None
            else f"{_fmt(start['mean'], start['std'], pct=True)} -> {_fmt(end['mean'], end['std'], pct=True)}"
        )
        cells.append(_fmt(entry["selected_epoch"]["mean"], None, digits=1))
        cells.append(_fmt(entry["epoch_seconds"]["mean"], None, digits=3))
        runs_text = f"{entry['done']}/{seeds_total}"
        if entry["diverged"]:
            runs_text += f" ({entry['diverged']} diverged)"
        cells.append(runs_text)
        rows.append(cells)
    out = [_table(header, rows)]
    selected_by = {r.get("selected_by") for r in runs if r.get("selected_by")}
    if selected_by:
        what = "AUC" if selected_by == {"auc"} else "loss"
        out.append(
            f"test metrics of each run's epoch with the best validation {what} "
            "(epoch: its mean over seeds); mean ± std over seeds"
        )
    if summary["vs_baseline"]:
        compared = metrics + ["dead_fraction_end"]
        header = ["activation"] + [("Δ " + METRICS[m][0]) for m in compared]
        header = [h if h != "Δ uAUC" else "Δ " + _uauc_label(runs) for h in header]
        rows = []
        for label, entry in summary["vs_baseline"].items():
            cells = [label]
            for m in compared:
                t = entry[m]
                if t["n"] == 0:
                    cells.append("-")
                    continue
                pct = m == "dead_fraction_end"
                scale, unit, digits = (100, " pp", 1) if pct else (1, "", 4)
                text = f"{scale * t['diff_mean']:+.{digits}f}"
                if t["diff_std"] is not None:
                    text += f" ± {scale * t['diff_std']:.{digits}f}"
                text += unit
                if t["p"] is None:
                    text += " p=n/a"
                else:
                    text += " p<0.001" if t["p"] < 0.001 else f" p={t['p']:.3f}"
                text += f" [{t['better']}/{t['tied']}/{t['worse']}]"
                cells.append(text)
            rows.append(cells)
        out.append(
            f"\nDifference to {summary['baseline']}, paired by seed: mean ± std of the per-seed "
            "differences, two-sided paired t-test p, [seeds better/tied/worse]"
        )
        out.append(_table(header, rows))
    return "\n".join(out)


# ------------------------------------------------------------------------------------- files
def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def write_json(path: str, payload: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(clean(payload), f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def write_csv(path: str, runs: Sequence[dict]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for run in runs:
            writer.writerow({k: ("" if run.get(k) is None else run[k]) for k in CSV_FIELDS})
    os.replace(tmp, path)


def write_predictions(
    path: str,
    rows: np.ndarray,
    groups: Optional[np.ndarray],
    y: np.ndarray,
    log_probs: np.ndarray,
    class_names: Sequence[str],
) -> None:
    """One row per test example: source row, group, true class, predicted class, probabilities."""
    probs = np.exp(log_probs)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["row"]
            + (["group"] if groups is not None else [])
            + ["target", "prediction"]
            + [f"p_{c}" for c in class_names]
        )
        for i in range(len(y)):
            writer.writerow(
                [int(rows[i])]
                + ([groups[i]] if groups is not None else [])
                + [class_names[int(y[i])], class_names[int(log_probs[i].argmax())]]
                + [f"{p:.9g}" for p in probs[i]]
            )


# ------------------------------------------------------------------------------------- plots
def _curves(runs: Sequence[dict], label: str, key: str, first: int = 0):
    """(epochs, mean, min, max) of history[key] from epoch ``first`` on, over the finished runs of
    one activation (the training loss starts at epoch 1)."""
    first = max(first, 1 if key == "train_loss" else 0)
    series = [
        [h.get(key) for h in r["history"][first:]]
        for r in runs
        if r["activation"] == label and r["status"] == "done"
    ]
    series = [s for s in series if s and all(v is not None for v in s)]
    if not series:
        return None
    length = min(len(s) for s in series)
    arr = np.array([s[:length] for s in series], dtype=float)
    return np.arange(first, first + length), arr.mean(0), arr.min(0), arr.max(0)


LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _style(i: int) -> dict:
    """A distinct color, line style and marker per activation, so overlapping lines stay visible."""
    return {
        "color": f"C{i % 10}",
        "linestyle": LINE_STYLES[i % len(LINE_STYLES)],
        "marker": MARKERS[i % len(MARKERS)],
        "markersize": 4,
        "markerfacecolor": "none",
    }


def layer_labels(run: dict) -> Dict[str, str]:
    """Module names (``body.2``) -> ``layer 1 (16 units)``, in the order the layers run."""
    layers = run["dead_start"]["layers"]
    return {name: f"layer {i + 1} ({info['units']} units)" for i, (name, info) in enumerate(layers.items())}


def plot_band(ax, label: str, curve, style: dict) -> None:
    """One activation's curve on a panel: the mean over seeds and its min..max band (``curve``:
    x, mean, lo, hi, or None for nothing to draw)."""
    if curve is None:
        return
    x, mean, lo, hi = curve
    ax.plot(x, mean, label=label, markevery=max(1, len(x) // 10), **style)
    ax.fill_between(x, lo, hi, color=style["color"], alpha=0.12, linewidth=0)


def plot_results(out_dir: str, runs: Sequence[dict], labels: Sequence[str], title: str) -> List[str]:
    """learning_curves.png and dead_units.png; returns the paths written ([] without matplotlib).

    Validation panels start at epoch 1 (the untrained model's epoch 0 would squash the scale);
    the dead-unit panel keeps epoch 0, the start."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    return [
        _plot_learning_curves(Figure, os.path.join(out_dir, "learning_curves.png"), runs, labels, title),
        _plot_dead_units(Figure, os.path.join(out_dir, "dead_units.png"), runs, labels, title),
    ]


def _plot_learning_curves(figure, path: str, runs: Sequence[dict], labels: Sequence[str], title: str) -> str:
    """Training loss, validation loss, validation AUC or accuracy and the dead fraction over the
    epochs: mean over seeds, band = min..max, one style per activation."""
    binary = any(r.get("auc") is not None for r in runs)
    panels = [
        ("train_loss", "training loss", 1),
        ("val_loss", "validation loss", 1),
        ("val_auc" if binary else "val_accuracy", "validation AUC" if binary else "validation accuracy", 1),
        ("dead_fraction", "dead units (validation set)", 0),
    ]
    fig = figure(figsize=(4.2 * len(panels), 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels))
    styles = {label: _style(i) for i, label in enumerate(labels)}
    for ax, (key, name, first) in zip(axes, panels):
        for label in labels:
            plot_band(ax, label, _curves(runs, label, key, first), styles[label])
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[1]:
        axes[0].legend(fontsize="small")
    fig.suptitle(f"{title}\nmean over seeds, band = min..max")
    fig.savefig(path, dpi=110)
    return path


def _plot_layers(ax, runs: Sequence[dict], label: str) -> bool:
    """One activation's panel of dead_units.png; False when it has no finished run."""
    done = [r for r in runs if r["activation"] == label and r["status"] == "done"]
    ax.set_title(label)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    if not done:
        ax.text(0.5, 0.5, "no finished run", ha="center", transform=ax.transAxes)
        return False
    names = layer_labels(done[0])
    layers = list(done[0]["history"][0]["dead_layers"])
    cmap = _colormap()
    length = min(len(r["history"]) for r in done)
    for i, layer in enumerate(layers):
        arr = np.array(
            [[h["dead_layers"].get(layer, np.nan) for h in r["history"][:length]] for r in done], dtype=float
        )
        ax.plot(
            np.arange(length),
            np.nanmean(arr, 0),
            color=cmap(i / max(len(layers) - 1, 1)),
            label=names.get(layer, layer),
            linewidth=1.2,
            linestyle=LINE_STYLES[i % len(LINE_STYLES)],
        )
    curve = _curves(runs, label, "dead_fraction")
    if curve is not None:
        ax.plot(curve[0], curve[1], color="black", linestyle="--", linewidth=2, label="all layers")
    return True


def _plot_dead_units(figure, path: str, runs: Sequence[dict], labels: Sequence[str], title: str) -> str:
    """The dead-unit fraction of every layer over the epochs, one panel per activation."""
    fig = figure(figsize=(4.2 * len(labels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(labels), sharey=True))
    legend_ax = None
    for ax, label in zip(axes, labels):
        if _plot_layers(ax, runs, label):
            legend_ax = legend_ax or ax
    axes[0].set_ylabel("dead fraction of the layer's units")
    if legend_ax is not None:
        handles, names = legend_ax.get_legend_handles_labels()
        if len(names) <= 20:
            axes[-1].legend(handles, names, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(
        f"{title}\ndead units per layer (never > 0 on the validation set), mean over seeds; "
        "light = first layer, dark = last"
    )
    fig.savefig(path, dpi=110)
    return path


def _colormap():
    from matplotlib import colormaps

    return colormaps["viridis_r"]
