"""Time of one training step with MPD (fp-gradagg) against linear scalarisation, and peak memory.

Two cases, each with K = 3 objectives sharing one forward:

(a) a small MLP (64 -> 256 -> 256 -> 3) with an MSE per output;
(b) a tiny diffusers ``UNet2DConditionModel`` (random weights, built from a config, nothing downloaded)
    with peft LoRA adapters on the attention projections (only the adapters train) and three masked-MSE
    noise-prediction objectives (whole image, a "face" box, a "hand" box), FairHuman-style.

A step is ``zero_grad`` + forward + ``fp_gradagg.backward`` + ``optimizer.step`` (SGD with lr 0, so every
variant sees the same model and batch). Variants: linear scalarisation (sum, one backward), MPD naive (K
backward passes), MPD fast (one batched backward, gradients reused), MPD fast with ``combine="recompute"``
(plus a weighted backward). Repetitions are interleaved (each repetition runs every variant, in a rotating
order); medians are reported. Peak memory on (b): the peak of live torch CPU allocations during one step above
the level at its start, reconstructed from ``torch.profiler`` memory events (``profile_memory=True``);
measured after the timings, in separate un-timed steps.

Also timed: the forward alone (``F``), giving ``k_backward_floor_ratio = (F + K (LS - F)) / LS``, the cost of
exact per-objective gradients when batching saves no FLOPs; and ``Amortised(MPD(), every=4)`` (weights
refreshed every 4 steps, reused in between), one sample being the mean step time over a whole 4-step cycle.
That is a different algorithm (stale weights), reported beside the exact per-step numbers, not instead of
them.

On a GPU (``--device cuda``) every timed block ends with ``torch.cuda.synchronize()`` and peak memory is
``torch.cuda.max_memory_allocated`` during one step above the allocation at its start. There, with small
kernels, a batched backward can cost far less than ``K`` backward passes, which is where the fast path's goal
(ratio <= 1.3 on case (b)) is meant to hold; on a CPU the step is compute-bound and the ratio stays near
``k_backward_floor_ratio``.

Prints ONE JSON line (the profiler's own start/stop lines go to stderr). Default run: about 30 s on 1 thread.
    uv run python benchmarks/gradagg_step.py [--reps 15] [--threads 1] [--unet-size 16] [--unet-batch 2]
        [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep the profiler quiet on stderr

import torch  # noqa: E402
from torch import nn  # noqa: E402

from fp_gradagg import MPD, Amortised, LinearScalarization, backward  # noqa: E402

K = 3


class Case:
    """A model, its trainable parameters and a closure computing the K losses of one fixed batch."""

    def __init__(self, name: str, model: nn.Module, losses: Callable[[], list[torch.Tensor]]) -> None:
        self.name = name
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.losses = losses
        self.optimizer = torch.optim.SGD(self.params, lr=0.0)


def build_mlp(batch: int = 64, device: str = "cpu") -> Case:
    """(a) MLP 64 -> 256 -> 256 -> 3, one MSE per output."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, K))
    model.to(device)
    inputs, targets = torch.randn(batch, 64, device=device), torch.randn(batch, K, device=device)

    def losses() -> list[torch.Tensor]:
        out = model(inputs)
        return [(out[:, k] - targets[:, k]).pow(2).mean() for k in range(K)]

    return Case("mlp", model, losses)


def build_unet_lora(size: int = 16, batch: int = 2, device: str = "cpu") -> Case:
    """(b) tiny UNet2DConditionModel + LoRA (rank 4 on to_q/to_k/to_v/to_out.0), three masked MSEs."""
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=size,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    unet.requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    latents = torch.randn(batch, 4, size, size)
    noise = torch.randn(batch, 4, size, size)
    timesteps = torch.randint(0, 1000, (batch,))
    text = torch.randn(batch, 8, 32)
    face = torch.zeros(batch, 1, size, size)
    face[:, :, size // 8 : size // 2, size // 4 : 3 * size // 4] = 1.0
    hand = torch.zeros(batch, 1, size, size)
    hand[:, :, 5 * size // 8 : 7 * size // 8, size // 8 : 3 * size // 8] = 1.0
    masks = [torch.ones(batch, 1, size, size), face, hand]
    unet.to(device)
    latents, noise, timesteps, text = (t.to(device) for t in (latents, noise, timesteps, text))
    masks = [m.to(device) for m in masks]

    def losses() -> list[torch.Tensor]:
        predicted = unet(latents + noise, timesteps, encoder_hidden_states=text).sample
        error = (predicted - noise).pow(2)
        return [(error * m).sum() / (m.sum() * error.shape[1]) for m in masks]

    return Case("unet_lora", unet, losses)


REFRESH_EVERY = 4
VARIANTS: dict[str, tuple[object, str, str]] = {
    "forward": (None, "", ""),  # the forward alone (with autograd on): F in the cost model below
    "ls": (LinearScalarization("sum"), "fast", "reuse"),
    "mpd_naive": (MPD(), "naive", "reuse"),
    "mpd_fast": (MPD(), "fast", "reuse"),
    "mpd_fast_recompute": (MPD(), "fast", "recompute"),
    f"mpd_fast_every{REFRESH_EVERY}": (Amortised(MPD(), every=REFRESH_EVERY), "fast", "reuse"),
}
# one timing sample = the mean over this many consecutive steps (a whole refresh cycle for the amortised one)
BLOCK = {name: (REFRESH_EVERY if name.startswith("mpd_fast_every") else 1) for name in VARIANTS}


def one_step(case: Case, variant: str) -> None:
    """zero_grad, forward, fp_gradagg.backward, optimiser step."""
    method, path, combine = VARIANTS[variant]
    case.optimizer.zero_grad(set_to_none=True)
    losses = case.losses()
    if method is None:
        return
    backward(losses, case.params, method, path=path, combine=combine)  # type: ignore[arg-type]
    case.optimizer.step()


def synchronize(device: str) -> None:
    """Wait for queued GPU work (a no-op on the CPU), so a timer reads finished work."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_case(case: Case, reps: int, warmup: int = 2, device: str = "cpu") -> dict[str, float]:
    """Median milliseconds per step of every variant, repetitions interleaved in a rotating order."""
    names = list(VARIANTS)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(warmup + reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            for _ in range(BLOCK[name]):
                one_step(case, name)
            synchronize(device)
            elapsed = (time.perf_counter() - start) / BLOCK[name]
            if rep >= warmup:
                samples[name].append(elapsed * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def peak_step_memory_mib(case: Case, variant: str, device: str = "cpu") -> float:
    """Peak of live torch allocations during one step, above the level at its start (MiB).

    CPU: reconstructed from ``torch.profiler`` memory events; CUDA: ``torch.cuda.max_memory_allocated``.
    """
    one_step(case, variant)  # warm
    case.optimizer.zero_grad(set_to_none=True)
    if torch.device(device).type == "cuda":
        synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        one_step(case, variant)
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - start) / 2**20

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        one_step(case, variant)
    events = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()  # type: ignore[union-attr]
        if event.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak / 2**20


def solver_ms(reps: int = 200) -> float:
    """Median time of one MPD solve on a 3 x 3 Gramian (ms)."""
    torch.manual_seed(1)
    gradients = torch.randn(K, 50, dtype=torch.float64) + 0.5
    gramian = gradients @ gradients.T
    method = MPD()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        method.solve(gramian)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def summarise(timings: dict[str, float]) -> dict[str, object]:
    """Milliseconds, ratios to LS, and the compute floor of exact per-objective gradients."""
    forward, plain = timings["forward"], timings["ls"]
    return {
        "ms": {name: round(value, 2) for name, value in timings.items()},
        # K backward passes' worth of work, (F + K (LS - F)) / LS: exact MPD if batching saves no FLOPs
        "k_backward_floor_ratio": round((forward + K * (plain - forward)) / plain, 3),
        "ratio_mpd_over_ls": {
            "naive": round(timings["mpd_naive"] / timings["ls"], 3),
            "fast": round(timings["mpd_fast"] / timings["ls"], 3),
            "fast_recompute": round(timings["mpd_fast_recompute"] / timings["ls"], 3),
            f"fast_every{REFRESH_EVERY}": round(timings[f"mpd_fast_every{REFRESH_EVERY}"] / timings["ls"], 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reps", type=int, default=15, help="timed repetitions per variant (after 2 warm-ups)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: stable timings on a shared machine)"
    )
    parser.add_argument("--unet-size", type=int, default=16, help="latent height = width of case (b)")
    parser.add_argument("--unet-batch", type=int, default=2, help="batch size of case (b)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:N]")
    args = parser.parse_args()
    device = args.device
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__})")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    mlp = build_mlp(device=device)
    mlp_result = summarise(time_case(mlp, reps=max(args.reps * 2, 10), device=device))
    unet = build_unet_lora(args.unet_size, args.unet_batch, device=device)
    unet_result = summarise(time_case(unet, reps=args.reps, device=device))
    unet_result["peak_mib"] = {
        name: round(peak_step_memory_mib(unet, name, device), 3)
        for name in ("ls", "mpd_naive", "mpd_fast", "mpd_fast_recompute")
    }
    unet_result["memory_method"] = (
        "torch.cuda.max_memory_allocated above the step's start"
        if torch.device(device).type == "cuda"
        else "torch.profiler CPU memory events: peak live torch allocations in one step"
    )
    unet_result["trainable_params"] = sum(p.numel() for p in unet.params)
    unet_result["config"] = {"latent": args.unet_size, "batch": args.unet_batch, "lora_rank": 4}
    fast_ratio = unet_result["ratio_mpd_over_ls"]["fast"]  # type: ignore[index]
    print(
        json.dumps(
            {
                "benchmark": "gradagg_step",
                "device": device,
                "threads": args.threads,
                "objectives": K,
                "mlp": mlp_result,
                "unet_lora": unet_result,
                "goal_fast_unet_ratio_le_1_3": bool(fast_ratio <= 1.3),
                "mpd_solve_ms": round(solver_ms(), 4),
                "torch": torch.__version__,
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
