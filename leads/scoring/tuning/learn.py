"""The statistics of fine-tuning: a stratified split, and a sparse logistic regression fitted
with scikit-learn, whose number of rules is chosen by cross-validation within a budget.

The fit is forward selection by cross-validated log-loss: starting from the intercept, each step
adds the column whose score test promises the largest fall of the log-loss and refits all chosen
columns with scikit-learn's `LogisticRegression` (lbfgs, a light L2 penalty, so the points are not
shrunk towards 0). The number of steps is the one with the lowest cross-validated log-loss (3
stratified folds of the training leads, each running its own selection) within the budget of
rules. The columns chosen are then refined by swaps (`swap_refine`): the set stays as large,
its training log-loss falls. Columns that must
have a non-negative weight (the steps of a monotone number, engagement) are held to it by
dropping those that come out negative and refitting, until none does: the active-set way of a
bound-constrained fit, pooling a step that goes the wrong way into its neighbour as isotonic
regression does.

Everything is deterministic: randomness comes only from `np.random.default_rng(seed)` (the split
and the folds), and both solvers are deterministic on the same input.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

CV_FOLDS = 3
# the refit's L2 strength (C; against a log-loss summed over thousands of leads, a light touch)
REFIT_C = 1.0
# how many of the columns the score test ranks first are refitted at each step
LOOKAHEAD = 6
# a trial refit stops early: enough to rank the trials, the chosen one is refitted in full
QUICK_ITERATIONS = 30


def stratified_split(y: np.ndarray, *, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, holdout) row indices, sorted: `share` of each class goes to the holdout."""
    rng = np.random.default_rng(seed)
    held = []
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        rows = rows[rng.permutation(len(rows))]
        held.append(rows[: int(round(share * len(rows)))])
    holdout = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(y)), holdout)
    return train, holdout


def stratified_folds(y: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of every row, each class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        rows = rows[rng.permutation(len(rows))]
        fold[rows] = np.arange(len(rows)) % folds
    return fold


def auc(scores: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count one half); None without both classes."""
    scores = np.asarray(scores, dtype=float)
    positives = int(np.sum(y == 1))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    bounds = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    # every member of a tie gets the group's average rank (1-based)
    mean_rank = (bounds[:-1] + bounds[1:] - 1) / 2.0 + 1.0
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(mean_rank, np.diff(bounds))
    rank_sum = float(np.sum(ranks[y == 1]))
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


@dataclass(frozen=True)
class Fit:
    intercept: float
    coef: np.ndarray

    def decision(self, X) -> np.ndarray:
        return np.asarray(X @ self.coef).ravel() + self.intercept


def _solve(
    X, y: np.ndarray, columns: np.ndarray, *, quick: bool = False, start: Fit | None = None
) -> Fit:
    """One fit on `columns` of X (the others get weight 0), with scikit-learn's
    LogisticRegression (lbfgs, a light L2 penalty), from `start`'s weights when given. The few
    chosen columns are taken as a dense matrix, which lbfgs goes through much faster."""
    coef = np.zeros(X.shape[1])
    if not len(columns) or len(np.unique(y)) < 2:
        rate = min(max(float(np.mean(y)) if len(y) else 0.5, 1e-6), 1 - 1e-6)
        return Fit(intercept=float(np.log(rate / (1 - rate))), coef=coef)
    model = LogisticRegression(
        penalty="l2",
        solver="lbfgs",
        C=REFIT_C,
        tol=1e-4 if quick else 1e-7,
        max_iter=QUICK_ITERATIONS if quick else 2000,
        warm_start=start is not None,
    )
    if start is not None:
        model.coef_ = start.coef[columns][None, :].copy()
        model.intercept_ = np.array([start.intercept])
    chosen = X[:, columns]
    if sparse.issparse(chosen):
        chosen = chosen.toarray()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(chosen, y)
    coef[columns] = model.coef_.ravel()
    return Fit(intercept=float(model.intercept_[0]), coef=coef)


def fit_constrained(
    X,
    y: np.ndarray,
    columns: np.ndarray,
    non_negative: np.ndarray,
    *,
    quick: bool = False,
    start: Fit | None = None,
) -> Fit:
    """A fit on `columns` in which every column marked `non_negative` ends with a weight ≥ 0:
    those that come out negative are dropped and the rest refitted, until none does."""
    columns = np.asarray(columns, dtype=np.int64)
    while True:
        fit = _solve(X, y, columns, quick=quick, start=start)
        wrong = columns[non_negative[columns] & (fit.coef[columns] < -1e-12)]
        if not len(wrong):
            return fit
        columns = np.setdiff1d(columns, wrong)
        start = fit


def _log_loss(fit: Fit, X, y: np.ndarray) -> float:
    eta = fit.decision(X)
    return float(np.sum(np.logaddexp(0.0, eta) - y * eta))


@dataclass(frozen=True)
class Selection:
    fit: Fit
    steps: int
    table: list[dict]


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(eta, -35.0, 35.0)))


def forward_path(
    X,
    y: np.ndarray,
    *,
    non_negative: np.ndarray,
    counted: np.ndarray,
    max_rules: int,
    max_steps: int,
) -> list[Fit]:
    """Forward selection: from the intercept alone, each step adds the column whose score test
    promises the largest fall of the log-loss (gradient squared over curvature, at the current
    fit), then refits every chosen column. A non-negative column is only added when it would enter
    upwards. Stops at `max_steps`, at `max_rules` counted columns, or when no column helps.
    Returns the fit after every step (the first: the intercept alone)."""
    X = sparse.csc_matrix(X)
    squared = _Squares(X)
    chosen = np.zeros(0, dtype=np.int64)
    fit = _solve(X, y, chosen)
    path = [fit]
    for _ in range(max_steps):
        score = _scores(X, squared, y, fit, non_negative)
        score[chosen] = 0.0
        if int(np.count_nonzero(counted[chosen])) >= max_rules:
            score[counted] = 0.0
        top = [int(j) for j in np.argsort(-score, kind="stable")[:LOOKAHEAD] if score[j] > 1e-6]
        if not top:
            break
        # the few most promising by the score test are each refitted; the lowest loss is taken
        trials = [
            fit_constrained(X, y, np.r_[chosen, j], non_negative, quick=True, start=fit)
            for j in top
        ]
        quick = min(trials, key=lambda t: _log_loss(t, X, y))
        fit = fit_constrained(X, y, np.flatnonzero(quick.coef), non_negative, start=quick)
        chosen = np.flatnonzero(fit.coef)
        path.append(fit)
    return path


class _Squares:
    """X with every entry squared, for the curvature. Rule columns hold only 0 and 1 and are
    their own squares, so only the other columns (engagement) are squared and kept: a copy of the
    whole matrix would be the largest array of a run at a million leads."""

    def __init__(self, X) -> None:
        self.X = X
        column_of = np.repeat(np.arange(X.shape[1]), np.diff(X.indptr))
        self.columns = np.unique(column_of[X.data != 1.0])
        part = X[:, self.columns]
        self.part = part.multiply(part).tocsc() if len(self.columns) else None

    def transpose_dot(self, w: np.ndarray) -> np.ndarray:
        out = np.asarray(self.X.T @ w).ravel()
        if self.part is not None:
            out[self.columns] = np.asarray(self.part.T @ w).ravel()
        return out


def _scores(X, squared: _Squares, y: np.ndarray, fit: Fit, non_negative: np.ndarray) -> np.ndarray:
    """The score test of every column at `fit`: how much adding it alone would lower the
    log-loss, to second order (gradient squared over curvature); 0 for a non-negative column
    that would enter downwards."""
    mu = _sigmoid(fit.decision(X))
    gradient = np.asarray(X.T @ (y - mu)).ravel()
    curvature = squared.transpose_dot(mu * (1.0 - mu))
    score = np.where(curvature > 1e-9, gradient**2 / np.maximum(curvature, 1e-9), 0.0)
    score[non_negative & (gradient <= 0)] = 0.0
    return score


def swap_refine(
    X, y: np.ndarray, fit: Fit, *, non_negative: np.ndarray, counted: np.ndarray, passes: int = 2
) -> Fit:
    """Improve a chosen set of columns without growing it: each chosen column in turn is taken
    out and the best column by the score test put in its place (it may be the same one); the
    swap is kept when the training log-loss falls. At most `passes` rounds, fewer when a round
    changes nothing."""
    X = sparse.csc_matrix(X)
    squared = _Squares(X)
    loss = _log_loss(fit, X, y)
    for _ in range(passes):
        changed = False
        for column in np.flatnonzero(fit.coef):
            if not fit.coef[column]:
                continue
            rest = np.setdiff1d(np.flatnonzero(fit.coef), [column])
            without = fit_constrained(X, y, rest, non_negative)
            score = _scores(X, squared, y, without, non_negative)
            score[rest] = 0.0
            # a counted column only replaces a counted one, so the budget holds
            score[counted != counted[column]] = 0.0
            best = int(np.argmax(score))
            if best == column or score[best] <= 1e-6:
                continue
            trial = fit_constrained(X, y, np.r_[rest, best], non_negative)
            trial_loss = _log_loss(trial, X, y)
            if trial_loss < loss - 1e-6:
                fit, loss, changed = trial, trial_loss, True
        if not changed:
            break
    return fit


def select(
    X,
    y: np.ndarray,
    *,
    non_negative: np.ndarray,
    counted: np.ndarray,
    max_rules: int,
    seed: int,
    folds: int = CV_FOLDS,
) -> Selection:
    """Forward selection (`forward_path`) with as many steps as give the lowest cross-validated
    log-loss (3 stratified folds of these leads, each running its own selection), within
    `max_rules` counted columns (engagement columns are not counted). Returns the model of that
    many steps fitted on all of X, with the cross-validated loss and AUC of every step."""
    X = sparse.csc_matrix(X)
    max_steps = max_rules + int(np.count_nonzero(~counted))
    options = {
        "non_negative": non_negative,
        "counted": counted,
        "max_rules": max_rules,
        "max_steps": max_steps,
    }
    fold = stratified_folds(y, folds=folds, seed=seed)
    losses = np.zeros(max_steps + 1)
    aucs = np.zeros(max_steps + 1)
    reached = max_steps
    for k in range(folds):
        inside, outside = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        # column-major slices: forward_path reads columns, and then makes no copy of its own
        path = forward_path(X[inside], y[inside], **options)
        reached = min(reached, len(path) - 1)
        Xo, yo = X[outside], y[outside]
        for step in range(max_steps + 1):
            fit = path[min(step, len(path) - 1)]
            losses[step] += _log_loss(fit, Xo, yo)
            aucs[step] += auc(fit.decision(Xo), yo) or 0.5
    path = forward_path(X, y, **options)
    last = min(reached, len(path) - 1)
    best = int(np.argmin(np.round(losses[: last + 1], 4)))
    refined = swap_refine(X, y, path[best], non_negative=non_negative, counted=counted)
    table = [
        {
            "steps": step,
            "rules": int(np.count_nonzero(counted[np.flatnonzero(path[step].coef)])),
            "log_loss": round(float(losses[step]) / len(y), 5),
            "auc": round(float(aucs[step]) / folds, 4),
        }
        for step in range(last + 1)
    ]
    return Selection(fit=refined, steps=best, table=table)
