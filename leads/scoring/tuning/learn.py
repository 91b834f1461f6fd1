"""The statistics of fine-tuning, in numpy only: a stratified split, an L2-regularised logistic
regression fitted by Newton's method, the choice of its strength by cross-validation, and AUC.

Everything is deterministic: randomness comes only from `np.random.default_rng(seed)`, and the
Newton iterations start from the same point every time.
"""

from dataclasses import dataclass

import numpy as np

# the strengths tried by cross-validation, strongest first (each fit starts from the previous one)
L2_GRID = (100.0, 30.0, 10.0, 3.0, 1.0, 0.3)
CV_FOLDS = 3
_MAX_ITERATIONS = 100
_TOLERANCE = 1e-9


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


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(eta, -35.0, 35.0)))


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
    l2: float
    iterations: int

    def decision(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef + self.intercept


def _loss(X1: np.ndarray, y: np.ndarray, w: np.ndarray, penalty: np.ndarray) -> float:
    eta = X1 @ w
    return float(np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * np.sum(penalty * w * w))


def fit_logistic(
    X: np.ndarray,
    y: np.ndarray,
    *,
    l2: float,
    scale: np.ndarray | None = None,
    start: Fit | None = None,
) -> Fit:
    """Minimise the log-loss plus l2/2 * sum((scale_j * coef_j)^2) by Newton's method with a
    backtracking line search. The intercept is not penalised. `scale` is each column's full
    strength (1 for a yes/no column), so the penalty acts on the points a rule can give."""
    n, p = X.shape
    y = y.astype(float)
    X1 = np.hstack([X, np.ones((n, 1))])
    penalty = np.zeros(p + 1)
    penalty[:p] = l2 * (np.ones(p) if scale is None else np.asarray(scale, dtype=float) ** 2)
    if start is not None:
        w = np.r_[start.coef, start.intercept]
    else:
        rate = min(max(y.mean(), 1e-6), 1 - 1e-6)
        w = np.zeros(p + 1)
        w[p] = np.log(rate / (1 - rate))
    loss = _loss(X1, y, w, penalty)
    iterations = 0
    for iterations in range(1, _MAX_ITERATIONS + 1):  # noqa: B007 (reported below)
        mu = _sigmoid(X1 @ w)
        gradient = X1.T @ (mu - y) + penalty * w
        root = np.sqrt(mu * (1.0 - mu))
        weighted = X1 * root[:, None]
        hessian = weighted.T @ weighted
        hessian[np.diag_indices_from(hessian)] += penalty + 1e-10
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        decrement = float(gradient @ step)
        if decrement / 2.0 < _TOLERANCE * max(1.0, abs(loss)):
            break
        t = 1.0
        while True:
            candidate = w - t * step
            new_loss = _loss(X1, y, candidate, penalty)
            if new_loss <= loss - 1e-4 * t * decrement or t < 1e-8:
                break
            t /= 2.0
        w, loss = candidate, new_loss
    return Fit(intercept=float(w[p]), coef=w[:p].copy(), l2=l2, iterations=iterations)


def _log_loss(X: np.ndarray, y: np.ndarray, fit: Fit) -> float:
    eta = fit.decision(X)
    return float(np.sum(np.logaddexp(0.0, eta) - y * eta))


def choose_l2(
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    scale: np.ndarray | None = None,
    grid: tuple[float, ...] = L2_GRID,
    folds: int = CV_FOLDS,
) -> tuple[float, list[dict]]:
    """The strength with the lowest cross-validated log-loss (stratified folds, fixed seed); ties
    go to the stronger one. Returns it and the table of every strength tried."""
    fold = stratified_folds(y, folds=folds, seed=seed)
    totals = np.zeros(len(grid))
    aucs = np.zeros(len(grid))
    for k in range(folds):
        inside, outside = fold != k, fold == k
        previous = None
        for i, l2 in enumerate(grid):
            previous = fit_logistic(X[inside], y[inside], l2=l2, scale=scale, start=previous)
            totals[i] += _log_loss(X[outside], y[outside], previous)
            aucs[i] += auc(previous.decision(X[outside]), y[outside]) or 0.0
    best = int(np.argmin(np.round(totals, 6)))
    table = [
        {
            "l2": l2,
            "log_loss": round(float(totals[i]) / len(y), 5),
            "auc": round(float(aucs[i]) / folds, 4),
        }
        for i, l2 in enumerate(grid)
    ]
    return grid[best], table
