"""train_fairhuman: every weighting runs and logs its weights, the ControlNet path applies the logged weights,
resume equals uninterrupted (mpd, dwa), the HumanScenes layout trains, config validation, a short run learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_sd import tiny_base  # noqa: E402  (tests/_tiny_sd.py, on the pytest pythonpath)
from PIL import Image
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import Dataset

from fp_core.manifest import read_manifest
from fp_core.sampling import EpochPermutation
from fp_core.seeds import torch_generator
from fp_diffusion.fairhuman import (
    ALL_WEIGHTINGS,
    LORA_KIND,
    FairHumanConfigError,
    FairHumanTrainConfig,
    HumanScenes,
    collate_scenes,
    fairhuman_forward,
    lora_parameters,
    train_fairhuman,
)

SMALL = dict(batch_size=2, lr=1e-3, lora_rank=4, cpu=True, validation_steps=2, validation_count=2)


class _Crash(RuntimeError):
    pass


def _scene(index: int, size: int = 32) -> dict:
    """A structured image with a face box and a hand box (the hand box empty for every third item)."""
    gen = torch.Generator().manual_seed(index)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    base = torch.stack([xx / size, yy / size, 0.5 * torch.ones(size, size)]) * 2 - 1
    face = torch.zeros(size, size)
    top, left = 4 + index % 5, 6 + index % 7
    face[top : top + 6, left : left + 6] = 1
    hand = torch.zeros(size, size)
    if index % 3:
        hand[20:25, 18 + index % 4 : 23 + index % 4] = 1
    pixels = (base + 0.8 * face - 0.6 * hand + 0.05 * torch.randn(3, size, size, generator=gen)).clamp(-1, 1)
    pose = torch.rand(3, size, size, generator=gen)
    return {"pixel_values": pixels, "face_mask": face, "hand_mask": hand, "conditions": {"pose": pose},
            "caption": f"a person {index % 3}", "file_name": f"images/{index:06d}.png"}  # fmt: skip


class Scenes(Dataset):
    """An in-memory dataset of HumanScenes-like items."""

    def __init__(self, count: int) -> None:
        self.items = [_scene(i) for i in range(count)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def _run(tmp_path: Path, config: FairHumanTrainConfig, data: Dataset, tag: str, **kwargs):
    logs: list[tuple[int, dict]] = []
    log = kwargs.pop("log", None)

    def record(metrics, step) -> None:
        logs.append((step, dict(metrics)))
        if log is not None:
            log(metrics, step)

    base = kwargs.pop("base", None) or tiny_base(tmp_path / "tok")
    result = train_fairhuman(config, base, data, output_dir=tmp_path / f"out-{tag}",
                             checkpoint_dir=tmp_path / f"ckpt-{tag}", log=record, progress=False, **kwargs)  # fmt: skip
    return result, [(s, m) for s, m in logs if "train/loss" in m], base


@pytest.mark.parametrize("weighting", ALL_WEIGHTINGS)
def test_every_weighting_runs_one_step_and_logs_three_weights(tmp_path: Path, weighting: str) -> None:
    options = {"seed": 0} if weighting == "rlw" else {}
    config = FairHumanTrainConfig(
        **SMALL, weighting=weighting, weighting_options=options, max_steps_per_epoch=1
    )
    unet, steps, _ = _run(tmp_path, config, Scenes(4), "w")
    assert len(steps) == 1
    metrics = steps[0][1]
    weights = [metrics[f"fairhuman/w_{name}"] for name in ("global", "face", "hand")]
    assert all(np.isfinite(weights)) and len(weights) == 3
    if weighting == "global_only":
        assert weights == [1.0, 0.0, 0.0]
    for name in ("global", "face", "hand"):
        assert metrics[f"train/loss_{name}"] > 0 and metrics[f"train/loss_{name}"] == pytest.approx(
            metrics[f"fairhuman/loss_{name}"], rel=1e-6
        )
    assert metrics["train/grad_norm"] > 0
    manifest = read_manifest(tmp_path / "out-w" / "final", LORA_KIND)
    assert manifest["rank"] == 4 and manifest["extra"]["weighting"] == weighting
    assert lora_parameters(unet)


def _randomised_controlnet(base):
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(8, 16, 16))
    gen = torch.Generator().manual_seed(9)
    with torch.no_grad():  # the zero convolutions start at 0: give them values so every parameter is reached
        for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            module.weight.copy_(0.1 * torch.randn(module.weight.shape, generator=gen))
    return controlnet


def test_controlnet_path_applies_the_logged_weights(tmp_path: Path) -> None:
    """The .grad the optimiser sees equals Σ_i w_i g_i with the logged w and K separate reference gradients."""
    config = FairHumanTrainConfig(**SMALL, module="controlnet", weighting="mpd", max_steps_per_epoch=1,
                                  max_grad_norm=None, condition_dropout=0.5)  # fmt: skip
    data = Scenes(4)
    base = tiny_base(tmp_path / "tok")
    controlnet = _randomised_controlnet(base)
    order = list(EpochPermutation(len(data), config.seed, "fairhuman-order"))
    batch = collate_scenes([data[i] for i in order[: config.batch_size]], "pose")
    seen: dict[str, list[torch.Tensor]] = {}

    def before_step(optimizer, args, kwargs) -> None:
        params = [p for p in controlnet.parameters() if p.requires_grad]
        seen["grad"] = [p.grad.detach().clone() for p in params]
        losses, _ = fairhuman_forward(
            base, controlnet, batch, config, torch_generator(0, "fairhuman-step", 0)
        )
        seen["per"] = [
            torch.autograd.grad(
                losses[k], params, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            for k in ("global", "face", "hand")
        ]

    handle = register_optimizer_step_pre_hook(before_step)
    try:
        _, steps, _ = _run(tmp_path, config, data, "cn", base=base, controlnet=controlnet)
    finally:
        handle.remove()
    w = [steps[0][1][f"fairhuman/w_{name}"] for name in ("global", "face", "hand")]
    assert w != pytest.approx([1.0, 1.0, 1.0]) and all(x > 0 for x in w)
    assert base.unet.conv_in.weight.grad is None  # the frozen UNet gets nothing
    total = 0.0
    for j, got in enumerate(seen["grad"]):
        want = sum(w[i] * seen["per"][i][j].double() for i in range(3))
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-8)
        total += float(got.abs().sum())
    assert total > 0
    assert (tmp_path / "out-cn" / "final" / "config.json").is_file()


@pytest.mark.parametrize("weighting", ["mpd", "dwa"])
def test_resume_equals_uninterrupted(tmp_path: Path, weighting: str) -> None:
    config = FairHumanTrainConfig(**SMALL, weighting=weighting, epochs=3, checkpoint_every=1,
                                  caption_dropout=0.3, lr_scheduler="cosine", lr_warmup_steps=1)  # fmt: skip
    data = Scenes(6)  # 3 batches per epoch: DWA's weights leave 1 in the third epoch
    straight, logs_a, _ = _run(tmp_path, config, data, "a")

    def crash_at_step_7(metrics, step) -> None:
        if step == 7 and "train/loss" in metrics:  # the 8th batch ran (3rd epoch); checkpoint-7 is the newest
            raise _Crash

    with pytest.raises(_Crash):
        _run(tmp_path, config, data, "b", log=crash_at_step_7)
    assert (tmp_path / "ckpt-b" / "checkpoint-00000007" / "lora" / "manifest.json").is_file()
    resumed, logs_b, _ = _run(tmp_path, config, data, "b")
    assert [s for s, _ in logs_b] == [7, 8]
    for (step_a, a), (step_b, b) in zip(logs_a[7:], logs_b, strict=True):
        assert step_a == step_b
        for name in ("global", "face", "hand"):
            assert a[f"fairhuman/w_{name}"] == b[f"fairhuman/w_{name}"]
    if weighting == "dwa":
        assert logs_a[-1][1]["fairhuman/w_face"] != pytest.approx(1.0)  # DWA's epoch history took effect
    a_state, b_state = dict(straight.named_parameters()), dict(resumed.named_parameters())
    for name, value in a_state.items():
        if ".lora_" in name:
            torch.testing.assert_close(b_state[name], value, rtol=0, atol=0, msg=name)


def _write_layout(root: Path, count: int, size: int = 32) -> Path:
    """``count`` scenes in the FairHuman data layout (images, pose conditions, metadata.jsonl)."""
    (root / "images").mkdir(parents=True)
    (root / "conditions" / "pose").mkdir(parents=True)
    lines = []
    for i in range(count):
        item = _scene(i, size)
        image = ((item["pixel_values"] + 1) / 2 * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(image).save(root / "images" / f"{i:06d}.png")
        pose = (item["conditions"]["pose"] * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(pose).save(root / "conditions" / "pose" / f"{i:06d}.png")
        top, left = 4 + i % 5, 6 + i % 7
        lines.append(json.dumps({
            "file_name": f"images/{i:06d}.png", "text": item["caption"],
            "face_boxes": [[left, top, left + 6, top + 6]],
            "hand_boxes": [[18 + i % 4, 20, 23 + i % 4, 25]] if i % 3 else [],
            "conditions": {"pose": f"conditions/pose/{i:06d}.png"},
        }))  # fmt: skip
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_controlnet_trains_on_the_data_layout_with_samples(tmp_path: Path) -> None:
    data = HumanScenes(_write_layout(tmp_path / "scenes", 4), seed=0)
    assert torch.equal(data[1]["face_mask"], _scene(1)["face_mask"])  # the layout gives the same masks
    config = FairHumanTrainConfig(**SMALL, module="controlnet", weighting="mpd_output", epochs=1,
                                  snapshot_epochs=(1,))  # fmt: skip
    grids: list[tuple] = []
    result, steps, _ = _run(
        tmp_path, config, data, "hs", on_samples=lambda g, s: grids.append((g.shape, g.dtype, s))
    )
    assert [s for s, _ in steps] == [0, 1]
    assert grids == [((64, 64, 3), np.dtype("uint8"), 2)]  # 2 poses over 2 images of 32 px
    assert sorted(p.name for p in (tmp_path / "out-hs").iterdir()) == ["epoch-1", "final"]
    assert not bool((result.controlnet_mid_block.weight == 0).all())


def test_accumulation_steps_and_errors(tmp_path: Path) -> None:
    config = FairHumanTrainConfig(**SMALL, weighting="ls", gradient_accumulation_steps=2)
    _, steps, _ = _run(tmp_path, config, Scenes(4), "acc")
    assert ["train/grad_norm" in m for _, m in steps] == [False, True]
    with pytest.raises(FairHumanConfigError, match="fewer than batch_size=2"):
        _run(tmp_path, FairHumanTrainConfig(**SMALL), Scenes(1), "few")
    with pytest.raises(FairHumanConfigError, match="prediction_type 'sample'"):
        _run(
            tmp_path,
            FairHumanTrainConfig(**SMALL),
            Scenes(2),
            "p",
            base=tiny_base(tmp_path / "t", prediction_type="sample"),
        )
    with pytest.raises(FairHumanConfigError, match="resolution 36 is not a multiple of 8"):
        _run(tmp_path, FairHumanTrainConfig(**SMALL, resolution=36), Scenes(2), "r")


def test_config_round_trip_and_errors() -> None:
    config = FairHumanTrainConfig(module="controlnet", weighting="dwa", snapshot_epochs=[1, 2],
                                  weighting_options={"temperature": 2.0}, conditioning_embedding_out_channels=[8, 16])  # fmt: skip
    values = config.to_dict()
    assert values["snapshot_epochs"] == [1, 2] and json.loads(json.dumps(values)) == values
    assert FairHumanTrainConfig.from_dict(values) == config
    defaults = FairHumanTrainConfig()
    assert (defaults.normalise, defaults.lora_rank, defaults.condition_dropout, defaults.weighting) == (
        "mask", 256, 0.3, "mpd")  # fmt: skip
    for bad, message in [
        ({"module": "dreambooth"}, "fairhuman.module must be one of"),
        ({"weighting": "pcgrad"}, "fairhuman.weighting must be one of"),
        ({"normalise": "box"}, "fairhuman.normalise must be one of"),
        ({"condition_dropout": 1.5}, r"fairhuman.condition_dropout must be a number in \[0.0, 1.0\]"),
        ({"lora_rank": 0}, "fairhuman.lora_rank must be an int >= 1"),
        ({"lr": 0}, "fairhuman.lr must be"),
        ({"snapshot_epochs": [0]}, r"snapshot_epochs\[...\] must be an int >= 1"),
    ]:
        with pytest.raises(FairHumanConfigError, match=message):
            FairHumanTrainConfig(**bad)
    with pytest.raises(FairHumanConfigError, match=r"unknown fairhuman setting\(s\) \['rank'\]"):
        FairHumanTrainConfig.from_dict({"rank": 4})


def _fixed_losses(base, unet, batch, config) -> float:
    with torch.no_grad():
        return sum(
            sum(float(v) for v in fairhuman_forward(base, unet, batch, config, torch_generator(99, k))[0].values())
            for k in range(4)
        ) / 4  # fmt: skip


@pytest.mark.slow
def test_a_short_run_lowers_the_losses_on_a_fixed_batch(tmp_path: Path) -> None:
    data = Scenes(8)
    config = FairHumanTrainConfig(**{**SMALL, "lr": 3e-3, "lora_rank": 8, "batch_size": 4}, epochs=15)
    batch = collate_scenes([data[i] for i in range(len(data))])
    base = tiny_base(tmp_path / "tok")
    before = _fixed_losses(base.freeze(), base.unet, batch, config)
    unet, _, _ = _run(tmp_path, config, data, "learn", base=base)
    after = _fixed_losses(base, unet.eval(), batch, config)
    print(f"summed FairHuman losses before {before:.4f} after {after:.4f}")
    assert after < 0.9 * before, (before, after)


def test_a_grad_scaler_gives_the_unscaled_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the harness's GradScaler active (a CPU scaler put on the accelerator, as fp16 does on a GPU) the
    FairHuman step takes the scaled losses and the scaler unscales: same weights and LoRA as without it.

    No clipping here: accelerate unscales before clipping only under real fp16 (``native_amp``), which a CPU
    accelerator does not have."""
    import fp_diffusion.fairhuman.train as train_module

    config = FairHumanTrainConfig(**SMALL, weighting="mpd", max_steps_per_epoch=2, max_grad_norm=None)
    plain, logs_plain, _ = _run(tmp_path, config, Scenes(4), "plain")
    build = train_module._harness
    scalers = []

    def with_scaler(*args, **kwargs):
        harness = build(*args, **kwargs)
        harness.accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=1)
        scalers.append(harness.accelerator.scaler)
        return harness

    monkeypatch.setattr(train_module, "_harness", with_scaler)
    scaled, logs_scaled, _ = _run(tmp_path, config, Scenes(4), "scaled")
    assert float(scalers[0].get_scale()) == 2.0**14  # two applied steps, each growing the scale
    assert all(m["amp/skipped_steps"] == 0 for _, m in logs_scaled)
    for (_, a), (_, b) in zip(logs_plain, logs_scaled, strict=True):
        for name in ("w_global", "w_face", "w_hand"):
            assert b[f"fairhuman/{name}"] == pytest.approx(a[f"fairhuman/{name}"], rel=1e-5)
        assert b["train/grad_norm"] == pytest.approx(a["train/grad_norm"], rel=1e-5)
    a_state, b_state = dict(plain.named_parameters()), dict(scaled.named_parameters())
    for name, value in a_state.items():
        if ".lora_" in name:
            torch.testing.assert_close(b_state[name], value, rtol=1e-5, atol=1e-8, msg=name)
