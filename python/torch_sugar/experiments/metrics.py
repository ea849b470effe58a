"""Held-out metrics (loss, accuracy, AUC, PR-AUC, uAUC) and the paired t-test over seeds, on
scikit-learn's ``roc_auc_score``/``average_precision_score`` and scipy's ``ttest_rel``.

scikit-learn and scipy are imported where they are used: together they take about 1.5 s to
import, which a command line that stops at a bad flag should not pay."""

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np


def _binary(y_true: Sequence, score: Sequence, fn: str) -> Tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"{fn}: y_true and score must be 1-D of one length, got {y.shape} and {s.shape}")
    return y, s


def auc(y_true: Sequence, score: Sequence) -> Optional[float]:
    """Area under the ROC curve (ties count one half); None unless both classes are present."""
    y, s = _binary(y_true, score, "auc")
    if y.all() or not y.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def pr_auc(y_true: Sequence, score: Sequence) -> Optional[float]:
    """Average precision (the area under the precision-recall curve, as scikit-learn defines it);
    None without positives."""
    y, s = _binary(y_true, score, "pr_auc")
    if not y.any():
        return None
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s))


def uauc(y_true: Sequence, score: Sequence, groups: Sequence) -> Tuple[Optional[float], int]:
    """Mean of the per-group AUCs over the groups that have both classes (unweighted), as used
    for click data with user ids. Returns (uAUC, number of groups averaged); (None, 0) if no group
    has both classes."""
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=np.float64)
    g = np.asarray(groups)
    if not (len(y) == len(s) == len(g)):
        raise ValueError(f"uauc: y_true, score and groups differ in length: {len(y)}, {len(s)}, {len(g)}")
    _, inverse = np.unique(g.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    aucs = []
    for idx in np.split(order, bounds):
        value = auc(y[idx], s[idx])
        if value is not None:
            aucs.append(value)
    if not aucs:
        return None, 0
    return float(np.mean(aucs)), len(aucs)


def classification_metrics(
    y_true: np.ndarray,
    log_probs: np.ndarray,
    groups: Optional[np.ndarray] = None,
    class_weight: Optional[np.ndarray] = None,
) -> Dict[str, Optional[float]]:
    """loss (mean cross-entropy, i.e. log loss), accuracy, AUC and PR-AUC (two classes only) and
    uAUC (two classes and groups) from the model's log-probabilities ``(rows, classes)``. With
    ``class_weight``, also ``weighted_loss``: the weighted mean cross-entropy that training
    minimizes (``torch.nn.functional.cross_entropy(weight=...)``)."""
    y = np.asarray(y_true, dtype=np.int64)
    nll = -log_probs[np.arange(len(y)), y]
    loss = float(nll.mean())
    accuracy = float((log_probs.argmax(axis=1) == y).mean())
    out: Dict[str, Optional[float]] = {
        "loss": loss,
        "accuracy": accuracy,
        "auc": None,
        "pr_auc": None,
        "uauc": None,
        "uauc_groups": None,
    }
    if class_weight is not None:
        w = np.asarray(class_weight, dtype=np.float64)[y]
        out["weighted_loss"] = float((w * nll).sum() / w.sum())
    if log_probs.shape[1] == 2:
        score = np.exp(log_probs[:, 1])
        out["auc"] = auc(y, score)
        out["pr_auc"] = pr_auc(y, score)
        if groups is not None:
            out["uauc"], out["uauc_groups"] = uauc(y, score, groups)
    return out


# ------------------------------------------------------------------------------ paired t-test
def paired_test(a: Sequence[float], b: Sequence[float]) -> Dict[str, Optional[float]]:
    """Paired t-test of ``b - a`` (same seeds) with scipy's ``ttest_rel``: mean and sample std of
    the differences, t, and the two-sided p-value (None with fewer than two pairs or differences
    without spread)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    n = len(d)
    out: Dict[str, Optional[float]] = {
        "n": n,
        "diff_mean": float(d.mean()) if n else None,
        "diff_std": float(d.std(ddof=1)) if n > 1 else None,
        "t": None,
        "p": None,
    }
    # differences that agree to rounding error (accuracies on one test set often differ by the
    # same count) have no spread to test against
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300) if n else 1.0
    if n < 2 or out["diff_std"] <= 1e-9 * scale:
        return out
    from scipy import stats

    result = stats.ttest_rel(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64))
    out["t"] = float(result.statistic)
    out["p"] = float(result.pvalue)
    if not math.isfinite(out["t"]):
        out["t"] = out["p"] = None
    return out
