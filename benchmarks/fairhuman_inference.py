"""Inference cost of a FairHuman LoRA: the base UNet forward vs the adapted (unfused) forward vs the fused one.

A small random-weight diffusers ``UNet2DConditionModel`` (nothing downloaded; sizes from the flags), peft LoRA
on ``to_q`` / ``to_k`` / ``to_v`` / ``to_out.0`` with random ``B`` (so the adapters change the output), and a
copy with the adapters merged by ``fp_diffusion.fairhuman.fuse_lora`` (``W + (alpha / r) B A``, the LoRA
layers removed). Each repetition times one ``no_grad`` forward of the three variants in a rotating order
(interleaved, so drift hits all alike); medians are reported, on ``--threads`` CPU threads.

``max_abs_diff_fused_vs_unfused`` checks that fusing keeps the function (``fused_matches_unfused``: within
``1e-4`` of the output scale); ``extra_params_unfused`` is the adapters' parameter count, ``extra_bytes_fused``
the fused UNet's parameter and buffer bytes minus the base's (0: fusing costs nothing at inference).

Prints ONE JSON line. ``goal_fused_le`` is the target for ``fused_over_base``.
    uv run python benchmarks/fairhuman_inference.py [--reps 9] [--threads 1] [--latent 16] [--batch 1]
        [--channels 64,128] [--cross-dim 64] [--rank 16] [--tokens 16]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from fp_diffusion.fairhuman import LoraSettings, add_lora, fuse_lora, lora_parameters

GOAL_FUSED_LE = 1.02
VARIANTS = ("base", "unfused", "fused")


def _bytes(module: torch.nn.Module) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def build(args: argparse.Namespace) -> tuple[dict[str, torch.nn.Module], int, dict[str, torch.Tensor]]:
    """The three UNets, the adapters' parameter count and a fixed input."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    channels = tuple(int(c) for c in args.channels.split(","))
    base = UNet2DConditionModel(
        sample_size=args.latent,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=channels,
        down_block_types=("CrossAttnDownBlock2D",) * len(channels),
        up_block_types=("CrossAttnUpBlock2D",) * len(channels),
        cross_attention_dim=args.cross_dim,
        attention_head_dim=8,
        norm_num_groups=min(32, channels[0] // 2),
    ).eval()
    unfused = copy.deepcopy(base)
    params = add_lora(unfused, LoraSettings(rank=args.rank))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # lora_B starts at 0: random values so the adapters change the output
        for p in params:
            p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    fused = fuse_lora(copy.deepcopy(unfused))
    b, s = args.batch, args.latent
    data = {
        "x": torch.randn(b, 4, s, s, generator=gen),
        "t": torch.randint(0, 1000, (b,), generator=gen),
        "e": torch.randn(b, args.tokens, args.cross_dim, generator=gen),
    }
    models = {"base": base, "unfused": unfused.eval(), "fused": fused.eval()}
    return models, sum(p.numel() for p in lora_parameters(unfused)), data


def forward(unet: torch.nn.Module, data: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return unet(data["x"], data["t"], encoder_hidden_states=data["e"]).sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9, help="timed repetitions per variant (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--latent", type=int, default=16, help="latent height = width")
    parser.add_argument("--batch", type=int, default=1, help="batch size")
    parser.add_argument("--channels", default="64,128", help="UNet block_out_channels, comma-separated")
    parser.add_argument("--cross-dim", type=int, default=64, help="cross-attention (text state) width")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    parser.add_argument("--tokens", type=int, default=16, help="text tokens")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    models, extra_params, data = build(args)

    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for rep in range(1 + args.reps):
        shift = rep % len(VARIANTS)
        for name in VARIANTS[shift:] + VARIANTS[:shift]:
            start = time.perf_counter()
            forward(models[name], data)
            if rep > 0:
                samples[name].append((time.perf_counter() - start) * 1e3)
    ms = {name: statistics.median(values) for name, values in samples.items()}

    outputs = {name: forward(model, data) for name, model in models.items()}
    diff = float((outputs["fused"] - outputs["unfused"]).abs().max())
    scale = float(outputs["unfused"].abs().max())
    change = float((outputs["unfused"] - outputs["base"]).abs().max())
    fused_ratio = ms["fused"] / ms["base"]
    print(
        json.dumps(
            {
                "benchmark": "fairhuman_inference",
                "fused_over_base": round(fused_ratio, 3),
                "unfused_over_base": round(ms["unfused"] / ms["base"], 3),
                "goal_fused_le": GOAL_FUSED_LE,
                "goal_fused_met": bool(fused_ratio <= GOAL_FUSED_LE),
                "extra_params_unfused": extra_params,
                "extra_bytes_fused": _bytes(models["fused"]) - _bytes(models["base"]),
                "max_abs_diff_fused_vs_unfused": diff,
                "fused_matches_unfused": bool(diff <= 1e-4 * max(1.0, scale)),
                "max_abs_lora_change": change,
                "ms": {name: round(value, 3) for name, value in ms.items()},
                "base_params": sum(p.numel() for p in models["base"].parameters()),
                "config": {
                    "latent": args.latent,
                    "batch": args.batch,
                    "channels": args.channels,
                    "cross_dim": args.cross_dim,
                    "lora_rank": args.rank,
                    "tokens": args.tokens,
                    "reps": args.reps,
                },
                "threads": args.threads,
                "torch": torch.__version__,
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
