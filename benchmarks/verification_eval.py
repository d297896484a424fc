"""Benchmark: vectorised LFW 10-fold evaluation against a per-threshold Python loop.

Both run on the same 12,000 synthetic embedding pairs in one process, interleaved, best of ``--repeats``.
Prints one JSON line: the time of each, their ratio, and whether the fold accuracies and thresholds are
identical (they must be).

    uv run --frozen python benchmarks/verification_eval.py
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from fp_metrics import kfold_accuracy, lfw_thresholds, pair_distances


def loop_kfold_accuracy(
    dist: np.ndarray, issame: np.ndarray, n_folds: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward protocol: consecutive folds, a Python loop over the 400 thresholds per fold."""
    thresholds = lfw_thresholds()
    n = dist.size
    sizes = [n // n_folds + (1 if k < n % n_folds else 0) for k in range(n_folds)]
    bounds = np.cumsum([0, *sizes])
    accuracies, chosen = [], []
    for k in range(n_folds):
        test = np.zeros(n, dtype=bool)
        test[bounds[k] : bounds[k + 1]] = True
        train = ~test
        best_acc, best_thr = -1.0, 0.0
        for thr in thresholds:
            acc = np.mean((dist[train] < thr) == issame[train])
            if acc > best_acc:
                best_acc, best_thr = acc, thr
        accuracies.append(np.mean((dist[test] < best_thr) == issame[test]))
        chosen.append(best_thr)
    return np.array(accuracies), np.array(chosen)


def synthetic_pairs(n_pairs: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Squared distances of L2-normalised random pairs (genuine pairs share an identity) and labels."""
    rng = np.random.default_rng(seed)
    issame = rng.random(n_pairs) < 0.5
    identity = rng.standard_normal((n_pairs, dim))
    other = np.where(issame[:, None], identity, rng.standard_normal((n_pairs, dim)))
    emb1 = identity + 2.5 * rng.standard_normal((n_pairs, dim))
    emb2 = other + 2.5 * rng.standard_normal((n_pairs, dim))
    return pair_distances(emb1, emb2), issame


def timed(fn: Callable[[], object], timings: list[float]) -> object:
    start = time.perf_counter()
    out = fn()
    timings.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dist, issame = synthetic_pairs(args.pairs, args.dim, args.seed)
    vec_times: list[float] = []
    loop_times: list[float] = []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        vec_acc, vec_thr = timed(lambda: kfold_accuracy(dist, issame, args.folds), vec_times)
        loop_acc, loop_thr = timed(lambda: loop_kfold_accuracy(dist, issame, args.folds), loop_times)
    vectorised_s, loop_s = min(vec_times), min(loop_times)
    print(
        json.dumps(
            {
                "benchmark": "verification_eval",
                "pairs": args.pairs,
                "folds": args.folds,
                "thresholds": int(lfw_thresholds().size),
                "vectorised_s": round(vectorised_s, 6),
                "loop_s": round(loop_s, 6),
                "speedup": round(loop_s / vectorised_s, 1),
                "accuracies_identical": bool(np.array_equal(vec_acc, loop_acc)),
                "thresholds_identical": bool(np.array_equal(vec_thr, loop_thr)),
                "mean_accuracy": float(np.mean(vec_acc)),
                "fold_accuracies": [float(a) for a in vec_acc],
            }
        )
    )


if __name__ == "__main__":
    main()
