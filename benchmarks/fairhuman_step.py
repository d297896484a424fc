"""Time of one FairHuman LoRA step: linear scalarisation vs exact MPD vs output-space MPD, and their agreement.

A small random-weight diffusers ``UNet2DConditionModel`` (nothing downloaded; sizes from the flags) with peft
LoRA on ``to_q`` / ``to_k`` / ``to_v`` / ``to_out.0`` (only the adapters train), three FairHuman objectives
(global, face-box and hand-box masked noise MSEs) and ``fp_diffusion.fairhuman.FairHumanStep``:

* ``ls``: the sum of the three losses, one backward;
* ``mpd_exact``: MPD on the parameter-space Gramian, fp-gradagg's fast path (one batched backward over the
  three objectives, gradients reused for the direction);
* ``mpd_output``: MPD on the Gramian of the gradients w.r.t. the UNet's output, then one weighted backward.

A step is ``zero_grad`` + forward + the FairHuman step + ``optimizer.step`` (SGD, lr 0: every variant sees the
same model and batch). Repetitions are interleaved in a rotating order; medians are reported.
``cosine_output_vs_exact`` is the cosine between the two MPD variants' combined parameter directions (the
``.grad`` they write) on the same batch; ``weights_*`` are their weights normalised to sum 1.

Prints ONE JSON line. ``goal_output_le`` is the target for ``mpd_output_over_ls``.
    uv run python benchmarks/fairhuman_step.py [--reps 7] [--threads 1] [--latent 16] [--batch 2]
        [--channels 64,128] [--cross-dim 64] [--rank 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from fp_diffusion.fairhuman import FairHumanStep, LoraSettings, add_lora, fairhuman_losses

GOAL_OUTPUT_LE = 1.1
VARIANTS = ("ls", "mpd_exact", "mpd_output")
WEIGHTINGS = {"ls": "ls", "mpd_exact": "mpd", "mpd_output": "mpd_output"}


def build(args: argparse.Namespace):
    """The UNet with LoRA, its trainable parameters and a fixed batch."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    channels = tuple(int(c) for c in args.channels.split(","))
    unet = UNet2DConditionModel(
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
    )
    unet_params = sum(p.numel() for p in unet.parameters())
    params = add_lora(unet, LoraSettings(rank=args.rank))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # lora_B starts at 0; random values make the three gradients generic
        for p in params:
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    b, s = args.batch, args.latent
    face = torch.zeros(b, 1, s, s)
    face[:, :, s // 8 : s // 2, s // 4 : 3 * s // 4] = 1.0
    hand = torch.zeros(b, 1, s, s)
    hand[:, :, 5 * s // 8 : 7 * s // 8, s // 8 : 3 * s // 8] = 1.0
    data = {
        "x": torch.randn(b, 4, s, s, generator=gen),
        "t": torch.randint(0, 1000, (b,), generator=gen),
        "e": torch.randn(b, 8, args.cross_dim, generator=gen),
        "noise": torch.randn(b, 4, s, s, generator=gen),
        "face": face,
        "hand": hand,
    }
    return unet, params, data, unet_params


def one_step(unet, data, step: FairHumanStep, optimizer: torch.optim.Optimizer):
    """zero_grad, forward, FairHuman step, optimiser step; returns the step's result."""
    optimizer.zero_grad(set_to_none=True)
    pred = unet(data["x"], data["t"], encoder_hidden_states=data["e"]).sample
    result = step(fairhuman_losses(pred, data["noise"], data["face"], data["hand"]), output=pred)
    optimizer.step()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per variant (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--latent", type=int, default=16, help="latent height = width")
    parser.add_argument("--batch", type=int, default=2, help="batch size")
    parser.add_argument("--channels", default="64,128", help="UNet block_out_channels, comma-separated")
    parser.add_argument("--cross-dim", type=int, default=64, help="cross-attention (text state) width")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    unet, params, data, unet_params = build(args)
    optimizer = torch.optim.SGD(params, lr=0.0)
    steps = {name: FairHumanStep(WEIGHTINGS[name], params) for name in VARIANTS}

    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for rep in range(1 + args.reps):
        shift = rep % len(VARIANTS)
        for name in VARIANTS[shift:] + VARIANTS[:shift]:
            start = time.perf_counter()
            one_step(unet, data, steps[name], optimizer)
            if rep > 0:
                samples[name].append((time.perf_counter() - start) * 1e3)
    ms = {name: statistics.median(values) for name, values in samples.items()}

    directions, weights = {}, {}
    for name in ("mpd_exact", "mpd_output"):
        result = one_step(unet, data, steps[name], optimizer)
        directions[name] = torch.cat([p.grad.detach().flatten().double() for p in params])
        w = result.weights.detach().double()
        weights[name] = [round(float(v), 4) for v in (w / w.sum())]
    cosine = float(
        torch.nn.functional.cosine_similarity(directions["mpd_exact"], directions["mpd_output"], dim=0)
    )
    norm_ratio = float(directions["mpd_output"].norm() / directions["mpd_exact"].norm())
    output_ratio = ms["mpd_output"] / ms["ls"]
    print(
        json.dumps(
            {
                "benchmark": "fairhuman_step",
                "mpd_exact_over_ls": round(ms["mpd_exact"] / ms["ls"], 3),
                "mpd_output_over_ls": round(output_ratio, 3),
                "cosine_output_vs_exact": round(cosine, 4),
                "goal_output_le": GOAL_OUTPUT_LE,
                "goal_output_met": bool(output_ratio <= GOAL_OUTPUT_LE),
                "norm_output_over_exact": round(norm_ratio, 4),
                "weights_exact": weights["mpd_exact"],
                "weights_output": weights["mpd_output"],
                "ms": {name: round(value, 2) for name, value in ms.items()},
                "unet_params": unet_params,
                "trainable_params": sum(p.numel() for p in params),
                "config": {
                    "latent": args.latent,
                    "batch": args.batch,
                    "channels": args.channels,
                    "cross_dim": args.cross_dim,
                    "lora_rank": args.rank,
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
