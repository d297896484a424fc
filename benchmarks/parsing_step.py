"""Time of a multi-objective parsing training step over a single-objective one, same model and batch.

Prints one JSON line: ``ratio_output_mode`` (robustness from noise on the logits: no extra forward) and
``ratio_input_mode`` (a share of the batch perturbed and passed through the model again) and
``ratio_output_literal_mode`` (the paper's literal noise on raw logits), each the median
step time of the multi-objective step (Dice + robustness + fairness, all weights non-zero) divided by the
median of the single-objective step (Dice only), measured interleaved in one run. Goal: output mode ≤ 1.15.

    uv run python benchmarks/parsing_step.py [--size 64] [--batch 16] [--repeats 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from fp_parsing.groups import build_groupings, group_ids
from fp_parsing.losses import ParsingObjectives, combine
from fp_parsing.model import build_parser

ATTRIBUTES = ["Male", "Young", "Pale_Skin", "Eyeglasses", "Wearing_Hat"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--encoder-depth", type=int, default=5)
    parser.add_argument("--decoder-channels", type=int, nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = build_parser(
        encoder_name=args.encoder,
        num_classes=19,
        encoder_depth=args.encoder_depth,
        decoder_channels=args.decoder_channels,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.rand(args.batch, 3, args.size, args.size)
    masks = torch.randint(0, 19, (args.batch, args.size, args.size))
    attributes = torch.randint(0, 2, (args.batch, len(ATTRIBUTES)))
    skin_tone = torch.randint(0, 2, (args.batch,))
    spec = build_groupings(ATTRIBUTES, ATTRIBUTES, include_skin_tone=True, num_skin_tone_groups=2)
    groups = group_ids(attributes, skin_tone, spec)

    def objectives(mode: str) -> ParsingObjectives:
        return ParsingObjectives(
            num_classes=19,
            robustness_mode=mode,
            noise_std=1.0,
            input_share=0.25,
            max_severity=0.8,
            fairness="variance",
            num_groups=spec.num_groups,
        )

    setups = {
        "single": (objectives("output"), (1.0, 0.0, 0.0)),
        "output": (objectives("output"), (0.4, 0.3, 0.3)),
        "input": (objectives("input"), (0.4, 0.3, 0.3)),
        "output_literal": (objectives("output_literal"), (0.4, 0.3, 0.3)),
    }

    def step(name: str, index: int) -> float:
        terms_fn, weights = setups[name]
        generator = torch.Generator().manual_seed(index)
        need = {"robustness": weights[1] > 0, "fairness": weights[2] > 0}
        start = time.perf_counter()
        terms = terms_fn(model, images, masks, groups, generator=generator, need=need)
        optimizer.zero_grad(set_to_none=True)
        combine(terms, weights).backward()
        optimizer.step()
        return time.perf_counter() - start

    for name in setups:  # warm-up
        step(name, 0)
    times: dict[str, list[float]] = {name: [] for name in setups}
    for repeat in range(args.repeats):
        for name in setups:  # interleaved, so drift hits every setup alike
            times[name].append(step(name, repeat + 1))
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "benchmark": "parsing_step",
        "image_size": args.size,
        "batch": args.batch,
        "encoder": args.encoder,
        "encoder_depth": args.encoder_depth,
        "decoder_channels": args.decoder_channels,
        "threads": args.threads,
        "repeats": args.repeats,
        "median_ms": {name: round(1000 * value, 2) for name, value in median.items()},
        "ratio_output_mode": round(median["output"] / median["single"], 3),
        "ratio_input_mode": round(median["input"] / median["single"], 3),
        "ratio_output_literal_mode": round(median["output_literal"] / median["single"], 3),
        "goal_output_mode_le_1_15": median["output"] / median["single"] <= 1.15,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
