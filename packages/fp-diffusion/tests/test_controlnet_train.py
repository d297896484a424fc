"""train_controlnet: zero initial residuals, the VAE-factor check, logging and schedule, outputs, resume,
and that a short run lowers the denoising loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _tiny_sd import tiny_base  # noqa: E402  (tests/_tiny_sd.py, on the pytest pythonpath)
from diffusers import ControlNetModel

from fp_core.seeds import torch_generator
from fp_diffusion.controlnet.config import ControlNetConfigError, ControlNetTrainConfig
from fp_diffusion.controlnet.data import ConditionedFaces, stack_items
from fp_diffusion.controlnet.train import (
    check_controlnet,
    controlnet_from_base,
    controlnet_loss,
    train_controlnet,
)

SMALL = dict(batch_size=4, lr=1e-4, validation_steps=2, cpu=True)


class _Crash(RuntimeError):
    pass


def _data(export: Path, flip: bool = False) -> ConditionedFaces:
    return ConditionedFaces(export, "train", resolution=32, captions="a face", flip=flip, seed=0)


def test_residuals_are_zero_at_initialisation(tmp_path: Path) -> None:
    base = tiny_base(tmp_path)
    controlnet = controlnet_from_base(base, ControlNetTrainConfig())
    assert tuple(controlnet.config.conditioning_embedding_out_channels) == (16, 32, 96)  # 2 stride-2: VAE x4
    noisy = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    steps = torch.tensor([5, 70])
    ids = base.tokenizer(["a face", "x"], max_length=16, padding="max_length", return_tensors="pt").input_ids
    states = base.text_encoder(ids, return_dict=False)[0]
    condition = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        down, mid = controlnet(
            noisy, steps, encoder_hidden_states=states, controlnet_cond=condition, return_dict=False
        )
        assert all(bool((r == 0).all()) for r in down) and bool((mid == 0).all())
        plain = base.unet(noisy, steps, encoder_hidden_states=states).sample
        controlled = base.unet(
            noisy,
            steps,
            encoder_hidden_states=states,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
    assert torch.equal(plain, controlled)


def test_embedding_that_does_not_fit_the_vae_factor_is_refused(tmp_path: Path, fake_export) -> None:
    base = tiny_base(tmp_path)
    wrong = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(16, 32, 96, 256))
    with pytest.raises(ControlNetConfigError, match="VAE downsamples by 4"):
        check_controlnet(wrong, base)
    export = fake_export(tmp_path / "export", {"train": 4}, size=32)
    with pytest.raises(ControlNetConfigError, match="VAE downsamples by 4"):
        train_controlnet(
            ControlNetTrainConfig(**SMALL), base, _data(export), output_dir=tmp_path / "o",
            checkpoint_dir=tmp_path / "c", controlnet=wrong, progress=False,
        )  # fmt: skip
    with pytest.raises(ControlNetConfigError, match="3 stride-2 convolutions"):
        controlnet_from_base(base, ControlNetTrainConfig(conditioning_embedding_out_channels=(8, 8, 8, 8)))


def test_unknown_prediction_type_and_bad_resolution_raise(tmp_path: Path, fake_export) -> None:
    export = fake_export(tmp_path / "export", {"train": 4}, size=32)
    base = tiny_base(tmp_path, prediction_type="sample")
    with pytest.raises(ControlNetConfigError, match="prediction_type 'sample'"):
        train_controlnet(ControlNetTrainConfig(**SMALL), base, _data(export), output_dir=tmp_path / "o",
                         checkpoint_dir=tmp_path / "c", progress=False)  # fmt: skip
    with pytest.raises(ControlNetConfigError, match="resolution 36 is not a multiple of 8"):
        train_controlnet(ControlNetTrainConfig(**SMALL, resolution=36), tiny_base(tmp_path), _data(export),
                         output_dir=tmp_path / "o", checkpoint_dir=tmp_path / "c", progress=False)  # fmt: skip


def test_dataset_at_another_resolution_is_refused(tmp_path: Path, fake_export) -> None:
    export = fake_export(tmp_path / "export", {"train": 4}, size=32)
    data = ConditionedFaces(export, "train", resolution=16, captions="a face")
    with pytest.raises(ControlNetConfigError, match="yields 16px items but the run trains at 32px"):
        train_controlnet(
            ControlNetTrainConfig(**SMALL), tiny_base(tmp_path), data, output_dir=tmp_path / "o",
            checkpoint_dir=tmp_path / "c", progress=False,
        )  # fmt: skip


def test_logs_schedule_accumulation_samples_and_outputs(tmp_path: Path, fake_export) -> None:
    export = fake_export(tmp_path / "export", {"train": 16}, size=32)
    base = tiny_base(tmp_path, prediction_type="v_prediction")
    config = ControlNetTrainConfig(
        **SMALL, epochs=2, gradient_accumulation_steps=2, lr_warmup_steps=2, snapshot_epochs=(1,),
        proportion_empty_prompts=0.5, condition_dropout=0.3,
    )  # fmt: skip
    logs: list[tuple[int, dict]] = []
    grids: list[tuple[tuple, int]] = []
    result = train_controlnet(
        config, base, _data(export, flip=True), output_dir=tmp_path / "out", checkpoint_dir=tmp_path / "ckpt",
        log=lambda m, s: logs.append((s, dict(m))), on_samples=lambda g, s: grids.append((g.shape, g.dtype, s)),
        sample_every=3, progress=False,
    )  # fmt: skip
    steps = [(s, m) for s, m in logs if "train/loss" in m]
    assert [s for s, _ in steps] == list(range(8))
    # 4 batches per epoch, 2 per optimiser step: the warmup rises over optimiser steps 0, 1, then stays
    assert [m["train/lr"] for _, m in steps] == pytest.approx([0, 0, 5e-5, 5e-5, 1e-4, 1e-4, 1e-4, 1e-4])
    assert ["train/grad_norm" in m for _, m in steps] == [False, True] * 4
    assert all(m["train/grad_norm"] > 0 for _, m in steps if "train/grad_norm" in m)
    assert (
        [s for _, _, s in grids] == [3, 6, 8] and grids[0][0] == (64, 128, 3) and grids[0][1].name == "uint8"
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["epoch-1", "final"]
    final = ControlNetModel.from_pretrained(tmp_path / "out" / "final")
    for name, value in result.state_dict().items():
        assert torch.equal(final.state_dict()[name], value), name
    newest = sorted((tmp_path / "ckpt").glob("checkpoint-*"))[-1]
    saved = ControlNetModel.from_pretrained(newest / "controlnet")
    assert torch.equal(saved.controlnet_mid_block.weight, result.controlnet_mid_block.weight)
    epoch_one = ControlNetModel.from_pretrained(tmp_path / "out" / "epoch-1")
    assert not torch.equal(epoch_one.controlnet_mid_block.weight, result.controlnet_mid_block.weight)
    assert not bool((result.controlnet_mid_block.weight == 0).all())  # the zero convolution has learnt


def test_resume_equals_uninterrupted(tmp_path: Path, fake_export) -> None:
    export = fake_export(tmp_path / "export", {"train": 12}, size=32)
    base = tiny_base(tmp_path)
    config = ControlNetTrainConfig(
        **SMALL, epochs=2, checkpoint_every=1, lr_scheduler="cosine", lr_warmup_steps=1,
        proportion_empty_prompts=0.3, condition_dropout=0.3,
    )  # fmt: skip
    straight = train_controlnet(config, base, _data(export, flip=True), output_dir=tmp_path / "oa",
                                checkpoint_dir=tmp_path / "a", progress=False)  # fmt: skip

    def crash_at_step_4(metrics, step) -> None:
        if step == 4 and "train/loss" in metrics:  # the 5th batch ran (2nd epoch); checkpoint-4 is the newest
            raise _Crash

    with pytest.raises(_Crash):
        train_controlnet(config, base, _data(export, flip=True), output_dir=tmp_path / "ob",
                         checkpoint_dir=tmp_path / "b", log=crash_at_step_4, progress=False)  # fmt: skip
    assert (tmp_path / "b" / "checkpoint-00000004" / "controlnet" / "config.json").is_file()
    resumed = train_controlnet(config, base, _data(export, flip=True), output_dir=tmp_path / "ob",
                               checkpoint_dir=tmp_path / "b", progress=False)  # fmt: skip
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0, msg=name)


def _fixed_loss(base, controlnet, batch, config) -> float:
    with torch.no_grad():
        return (
            sum(
                float(controlnet_loss(base, controlnet, batch, config, torch_generator(99, "eval", k)))
                for k in range(4)
            )
            / 4
        )


@pytest.mark.slow
def test_a_short_run_lowers_the_denoising_loss_on_a_fixed_batch(tmp_path: Path, fake_export) -> None:
    export = fake_export(tmp_path / "export", {"train": 8}, size=32)
    base = tiny_base(tmp_path)
    data = _data(export)
    config = ControlNetTrainConfig(**{**SMALL, "lr": 1e-3}, epochs=25, max_grad_norm=1.0)
    batch = stack_items([data[i] for i in range(len(data))])
    before = _fixed_loss(base.freeze(), controlnet_from_base(base, config), batch, config)
    trained = train_controlnet(config, base, data, output_dir=tmp_path / "o", checkpoint_dir=tmp_path / "c",
                               progress=False)  # fmt: skip
    after = _fixed_loss(base, trained.eval(), batch, config)
    print(f"denoising loss before {before:.4f} after {after:.4f}")
    assert after < 0.9 * before, (before, after)
