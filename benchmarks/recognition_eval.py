"""Benchmark: batched embedding + vectorised verification of a 12,000-pair .bin set against a per-pair loop.

Both score the same set with the same network in one process, side by side:

* **batched** (``fp_recognition.evaluate_bin``): the ``2P`` images decoded lazily and embedded in batches
  with the flip test, then ``fp_metrics.verify_pairs`` (all folds and thresholds at once);
* **per pair**: for each pair, decode and embed its two images separately (each with its mirror), compute the
  distance, then for each fold a Python loop over the 400 thresholds on the training folds.

Prints one JSON line: both times, their ratio, whether the fold accuracies are identical and the largest
difference between the two paths' pair distances.

    uv run --frozen python benchmarks/recognition_eval.py            # 12,000 pairs
    uv run --frozen python benchmarks/recognition_eval.py --pairs 600
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fp_metrics import lfw_thresholds
from fp_recognition import VerificationBin, build_backbone, encode_jpeg, evaluate_bin
from fp_recognition.data import image_to_tensor, normalise


def synthetic_bin(n_pairs: int, size: int, seed: int) -> VerificationBin:
    """``n_pairs`` pairs of JPEG images: an identity is a colour and a blob position, every image adds noise."""
    rng = np.random.default_rng(seed)
    issame = np.arange(n_pairs) % 600 < 300  # LFW's order: folds of 300 genuine then 300 impostor pairs
    n_ids = max(n_pairs // 4, 2)
    colours = rng.uniform(0, 255, (n_ids, 3))
    centres = rng.uniform(0.3, 0.7, (n_ids, 2)) * size
    yy, xx = np.mgrid[0:size, 0:size]

    def image(identity: int) -> bytes:
        cy, cx = centres[identity] + rng.normal(0, 1.0, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.2 * size) ** 2))[..., None]
        pixels = 128 + blob * (colours[identity] - 128) + rng.normal(0, 12, (size, size, 3))
        return encode_jpeg(np.clip(pixels, 0, 255).astype(np.uint8))

    images = []
    for p in range(n_pairs):
        a = int(rng.integers(n_ids))
        b = a if issame[p] else int((a + 1 + rng.integers(n_ids - 1)) % n_ids)
        images += [image(a), image(b)]
    return VerificationBin("synthetic", Path("synthetic.bin"), images, issame)


@torch.no_grad()
def per_pair(
    model: torch.nn.Module, bin_set: VerificationBin, n_folds: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward evaluation: ``(fold accuracies [K], distances [P])``."""

    def embed(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as img:
            x = normalise(image_to_tensor(img.convert("RGB")))[None]
        fused = model(x) + model(x.flip(-1))
        return (fused / fused.norm()).numpy()[0].astype(np.float64)

    distances = np.empty(bin_set.num_pairs)
    for p in range(bin_set.num_pairs):
        e1, e2 = embed(bin_set.images[2 * p]), embed(bin_set.images[2 * p + 1])
        distances[p] = float(np.sum((e1 - e2) ** 2))
    same = bin_set.issame
    n = distances.size
    edges = np.cumsum([0] + [n // n_folds + (1 if k < n % n_folds else 0) for k in range(n_folds)])
    accuracies = []
    for k in range(n_folds):
        held = np.zeros(n, dtype=bool)
        held[edges[k] : edges[k + 1]] = True
        best, best_threshold = -1.0, 0.0
        for threshold in lfw_thresholds():
            accuracy = float(np.mean((distances[~held] < threshold) == same[~held]))
            if accuracy > best:
                best, best_threshold = accuracy, threshold
        accuracies.append(float(np.mean((distances[held] < best_threshold) == same[held])))
    return np.asarray(accuracies), distances


def batched_distances(model: torch.nn.Module, bin_set: VerificationBin, batch_size: int) -> np.ndarray:
    """The batched path's pair distances (for the comparison only; not timed)."""
    from fp_metrics.verification import pair_distances
    from fp_recognition import embed_images

    fused = embed_images(model, bin_set.tensors(), batch_size=batch_size).fused
    return pair_distances(fused[0::2], fused[1::2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12_000)
    parser.add_argument("--size", type=int, default=32, help="image side (a multiple of 16)")
    parser.add_argument("--backbone", default="iresnet18")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_backbone(args.backbone, input_size=args.size, embedding_size=128, width=args.width).eval()
    bin_set = synthetic_bin(args.pairs, args.size, args.seed)

    start = time.perf_counter()
    batched = evaluate_bin(model, bin_set, batch_size=args.batch_size)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    loop_accuracies, loop_distances = per_pair(model, bin_set)
    loop_s = time.perf_counter() - start
    difference = float(np.max(np.abs(batched_distances(model, bin_set, args.batch_size) - loop_distances)))
    print(
        json.dumps(
            {
                "benchmark": "recognition_eval",
                "pairs": args.pairs,
                "images": len(bin_set.images),
                "backbone": f"{args.backbone} width {args.width} at {args.size}",
                "threads": args.threads,
                "batched_s": round(batched_s, 3),
                "per_pair_s": round(loop_s, 3),
                "speedup": round(loop_s / batched_s, 1),
                "accuracies_identical": bool(
                    np.array_equal(batched.details.fold_accuracies, loop_accuracies)
                ),
                "accuracy": batched.accuracy,
                "max_distance_difference": difference,
            }
        )
    )


if __name__ == "__main__":
    main()
