"""Held-out metrics (loss, accuracy, AUC, uAUC) and the paired t-test over seeds.

Plain numpy, so the numbers do not depend on which optional packages are installed.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np


def auc(y_true: Sequence, score: Sequence) -> Optional[float]:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, ties counting one half (Mann-Whitney U / (n_pos * n_neg)). None unless both classes
    are present."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"auc: y_true and score must be 1-D of one length, got {y.shape} and {s.shape}")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # 1-based rank of each distinct value, averaged over its ties
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = avg_rank[inverse]
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


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


def classification_metrics(y_true: np.ndarray, log_probs: np.ndarray,
                           groups: Optional[np.ndarray] = None) -> Dict[str, Optional[float]]:
    """loss (mean cross-entropy), accuracy, AUC (two classes only) and uAUC (two classes and
    groups) from the model's log-probabilities ``(rows, classes)``."""
    y = np.asarray(y_true, dtype=np.int64)
    loss = float(-log_probs[np.arange(len(y)), y].mean())
    accuracy = float((log_probs.argmax(axis=1) == y).mean())
    out: Dict[str, Optional[float]] = {"loss": loss, "accuracy": accuracy, "auc": None, "uauc": None}
    if log_probs.shape[1] == 2:
        score = np.exp(log_probs[:, 1])
        out["auc"] = auc(y, score)
        if groups is not None:
            out["uauc"], out["uauc_groups"] = uauc(y, score, groups)
    return out


# ------------------------------------------------------------------------------ paired t-test
def student_t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with an integer number of degrees of freedom, by the closed
    form series (Abramowitz & Stegun 26.7.3/26.7.4). Used when scipy is not installed."""
    if df < 1:
        raise ValueError(f"student_t_two_sided_p: df must be >= 1, got {df}")
    if math.isinf(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        total, term = 0.0, c
        if df > 1:
            total = term
            for k in range(3, df - 1, 2):  # term_k = term_{k-2} * (k-1)/k * cos^2
                term *= (k - 1) / k * c * c
                total += term
        a = 2.0 / math.pi * (theta + s * total)
    else:
        total, term = 1.0, 1.0
        for k in range(2, df - 1, 2):  # term_k = term_{k-2} * (k-1)/k * cos^2
            term *= (k - 1) / k * c * c
            total += term
        a = s * total
    return min(1.0, max(0.0, 1.0 - a))


def paired_test(a: Sequence[float], b: Sequence[float]) -> Dict[str, Optional[float]]:
    """Paired t-test of ``b - a`` (same seeds): mean and sample std of the differences, t, and the
    two-sided p-value (None with fewer than two pairs or differences without spread)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    n = len(d)
    out: Dict[str, Optional[float]] = {"n": n, "diff_mean": float(d.mean()) if n else None,
                                       "diff_std": float(d.std(ddof=1)) if n > 1 else None,
                                       "t": None, "p": None}
    # differences that agree to rounding error (accuracies on one test set often differ by the
    # same count) have no spread to test against
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300) if n else 1.0
    if n < 2 or out["diff_std"] <= 1e-9 * scale:
        return out
    t = out["diff_mean"] / (out["diff_std"] / math.sqrt(n))
    out["t"] = float(t)
    try:
        from scipy import stats
        out["p"] = float(stats.ttest_rel(b, a).pvalue)
    except ImportError:
        out["p"] = student_t_two_sided_p(t, n - 1)
    return out
