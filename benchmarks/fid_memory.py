"""Benchmark: peak memory of streaming FID statistics against holding all features.

For each N (default 10k and 50k synthetic D = 2048 features, generated in float32 chunks of 1,000 from
one seed), two fresh worker processes compute the same mean and covariance:

* ``streaming``: :class:`fp_metrics.FeatureStats` updated chunk by chunk (O(D^2) memory);
* ``all``: every feature kept in one float32 ``[N, D]`` array, then ``np.mean`` / ``np.cov`` (the
  clean-fid way).

Peak memory is the growth of the worker's peak resident set over its resident set just before the work
(after the imports and a tiny warm-up of both paths, with the peak reset through
``/proc/self/clear_refs``; Linux only). Prints one JSON line with the peaks, their ratios, and the largest relative difference between the
two covariances (they must agree).

    uv run --frozen python benchmarks/fid_memory.py [--sizes 10000 50000] [--dim 2048]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fp_metrics import FeatureStats

CHUNK = 1_000


def _status_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak_rss() -> None:
    """Reset the peak resident set (``VmHWM``) to the current one (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def feature_chunks(n: int, dim: int, seed: int) -> Iterator[np.ndarray]:
    """Synthetic float32 features ``[<= CHUNK, dim]`` with per-dimension scales and offsets."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(0.1, 2.0, dim, dtype=np.float32)
    offset = np.linspace(-1.0, 1.0, dim, dtype=np.float32)
    for start in range(0, n, CHUNK):
        chunk = rng.standard_normal((min(CHUNK, n - start), dim), dtype=np.float32)
        chunk *= scale
        chunk += offset
        yield chunk


def streaming_stats(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    stats = FeatureStats(dim)
    for chunk in feature_chunks(n, dim, seed):
        stats.update(chunk)
    return stats.mean, stats.cov


def all_features_stats(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    features = np.empty((n, dim), dtype=np.float32)
    row = 0
    for chunk in feature_chunks(n, dim, seed):
        features[row : row + len(chunk)] = chunk
        row += len(chunk)
    return np.mean(features, axis=0, dtype=np.float64), np.cov(features, rowvar=False)


def worker(mode: str, n: int, dim: int, seed: int, out: Path) -> None:
    """Compute mean and covariance one way; write them to ``out`` and print the peak memory as JSON."""
    # Warm up both code paths on a tiny problem first, so that lazily loaded library code and thread pools
    # are part of the baseline rather than of the measured peak.
    streaming_stats(64, 16, seed)
    all_features_stats(64, 16, seed)
    gc.collect()
    _reset_peak_rss()
    baseline = _status_mib("VmRSS")
    start = time.perf_counter()
    mean, cov = (streaming_stats if mode == "streaming" else all_features_stats)(n, dim, seed)
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM") - baseline
    np.savez(out, mean=mean, cov=cov)
    print(json.dumps({"peak_mib": peak, "seconds": seconds}))


def run_worker(mode: str, n: int, dim: int, seed: int, out: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", mode, "--n", str(n), "--dim", str(dim), "--seed", str(seed)]
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["streaming", "all"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.n, args.dim, args.seed, args.out)
        return

    result: dict[str, object] = {"benchmark": "fid_memory", "dim": args.dim, "chunk": CHUNK}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            paths = {mode: Path(tmp) / f"{mode}_{n}.npz" for mode in ("streaming", "all")}
            runs = {mode: run_worker(mode, n, args.dim, args.seed, path) for mode, path in paths.items()}
            with np.load(paths["streaming"]) as s, np.load(paths["all"]) as a:
                cov_diff = float(np.max(np.abs(s["cov"] - a["cov"])) / np.max(np.abs(a["cov"])))
                mean_diff = float(np.max(np.abs(s["mean"] - a["mean"])))
            result[f"n{n}"] = {
                "streaming_peak_mib": round(runs["streaming"]["peak_mib"], 1),
                "all_features_peak_mib": round(runs["all"]["peak_mib"], 1),
                "memory_ratio_all_over_streaming": round(
                    runs["all"]["peak_mib"] / runs["streaming"]["peak_mib"], 2
                ),
                "streaming_s": round(runs["streaming"]["seconds"], 2),
                "all_features_s": round(runs["all"]["seconds"], 2),
                "cov_max_rel_diff": cov_diff,
                "mean_max_abs_diff": mean_diff,
            }
    peaks = [result[f"n{n}"]["streaming_peak_mib"] for n in args.sizes]  # type: ignore[index]
    result["streaming_peak_growth_first_to_last"] = round(peaks[-1] / peaks[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
