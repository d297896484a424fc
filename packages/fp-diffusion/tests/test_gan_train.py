"""train_pix2pixhd: logging, samples, the schedule, errors, resume, and that it learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fp_core.seeds import derive_seed
from fp_diffusion.data import PairedMaps
from fp_diffusion.gan import ConfigError, Pix2PixHDConfig, build_generator, generate, train_pix2pixhd

SMALL = dict(
    ngf=8,
    n_downsample=2,
    n_blocks=1,
    ndf=8,
    n_layers_D=2,
    num_D=2,
    batch_size=4,
    resolution=None,
    vgg=False,
    num_samples=3,
)


def _l1(generator, data: PairedMaps) -> float:
    labels = torch.stack([data[i][0] for i in range(len(data))])
    real = (torch.stack([data[i][1] for i in range(len(data))]) + 1) / 2
    return float((generate(generator, labels, 8) - real).abs().mean())


def test_logs_samples_and_schedule(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 8}, size=16)
    config = Pix2PixHDConfig(**SMALL, niter=1, niter_decay=2)
    logged: list[tuple[dict, int]] = []
    grids: list[tuple[tuple, int]] = []
    data = PairedMaps(root, "train", flip=True)
    generator = train_pix2pixhd(
        config,
        data,
        checkpoint_dir=tmp_path / "ckpt",
        log=lambda m, s: logged.append((dict(m), s)),
        on_samples=lambda grid, step: grids.append((grid.shape, step)),
        sample_every=4,
        progress=False,
    )
    steps = [(m, s) for m, s in logged if "train/loss_G_GAN" in m]
    assert len(steps) == 6 and [s for _, s in steps] == list(range(6))
    for name in ("loss_G_GAN", "loss_G_FM", "loss_G_VGG", "loss_G_L1", "loss_D_real", "loss_D_fake"):
        assert all(np.isfinite(m[f"train/{name}"]) for m, _ in steps)
    assert all(m["train/loss_G_VGG"] == 0.0 and m["train/loss_G_L1"] == 0.0 for m, _ in steps)
    assert [m["train/lr"] for m, _ in steps] == pytest.approx([2e-4] * 4 + [1e-4] * 2)
    assert any(m.get("train/vgg_enabled") == 0.0 for m, _ in logged)
    epochs = [m for m, _ in logged if "epoch/loss_D_real" in m]
    assert len(epochs) == 3
    assert grids == [((48, 48, 3), 4), ((48, 48, 3), 6)]  # 3 rows of 16 px, 3 samples of 16 px
    assert generator.training_notes == []  # vgg=False: asked off, nothing to note
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "checkpoint-00000004",
        "checkpoint-00000006",
    ]


def test_bad_sizes_and_small_datasets(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 4}, size=18)
    with pytest.raises(ConfigError, match="18x18 is not divisible by 4"):
        train_pix2pixhd(
            Pix2PixHDConfig(**SMALL, niter=1, niter_decay=0),
            PairedMaps(root, "train"),
            checkpoint_dir=tmp_path / "c1",
            progress=False,
        )
    with pytest.raises(ConfigError, match="fewer than batch_size=8"):
        train_pix2pixhd(
            Pix2PixHDConfig(**{**SMALL, "batch_size": 8}, niter=1, niter_decay=0),
            PairedMaps(root, "train", resolution=16),
            checkpoint_dir=tmp_path / "c2",
            progress=False,
        )


class _Crash(RuntimeError):
    pass


def test_resume_equals_uninterrupted(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 8}, size=16)
    config = Pix2PixHDConfig(**SMALL, niter=1, niter_decay=1, checkpoint_every=1, flip=True)

    def data() -> PairedMaps:
        return PairedMaps(root, "train", flip=True, seed=config.seed)

    straight = train_pix2pixhd(config, data(), checkpoint_dir=tmp_path / "a", progress=False)

    def crash_at_step_3(metrics, step) -> None:
        if step == 3 and "train/loss_G_GAN" in metrics:  # the 4th batch ran; checkpoint-3 is the newest
            raise _Crash

    with pytest.raises(_Crash):
        train_pix2pixhd(config, data(), checkpoint_dir=tmp_path / "b", log=crash_at_step_3, progress=False)
    assert (tmp_path / "b" / "checkpoint-00000003").is_dir()
    resumed = train_pix2pixhd(config, data(), checkpoint_dir=tmp_path / "b", progress=False)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_a_short_run_lowers_the_l1_to_the_real_images(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 16}, size=16)
    config = Pix2PixHDConfig(**{**SMALL, "ngf": 16}, niter=6, niter_decay=0, lr=1e-3, lambda_l1=0.0)
    data = PairedMaps(root, "train")
    torch.manual_seed(0)
    before = _l1(build_generator(config), data)
    generator = train_pix2pixhd(config, data, checkpoint_dir=tmp_path / "ckpt", progress=False)
    after = _l1(generator, data)
    print(f"L1 before {before:.4f} after {after:.4f}")
    assert after < 0.6 * before, (before, after)


def test_local_enhancer_trains_only_its_local_part_while_the_global_is_fixed(
    tmp_path: Path, fake_export
) -> None:
    root = fake_export(tmp_path / "export", {"train": 4}, size=16)
    config = Pix2PixHDConfig(**SMALL, generator="local", niter=1, niter_decay=0, niter_fix_global=1)
    torch.manual_seed(derive_seed(config.seed, "pix2pixhd-init"))  # the trainer's initialisation
    initial = build_generator(config)
    trained = train_pix2pixhd(
        config, PairedMaps(root, "train"), checkpoint_dir=tmp_path / "c", progress=False
    )
    for name, value in initial.net.global_model.state_dict().items():
        assert torch.equal(value, trained.net.global_model.state_dict()[name]), name
    assert not torch.equal(initial.net.front[1].weight, trained.net.front[1].weight)
    assert not torch.equal(initial.net.back[-2].weight, trained.net.back[-2].weight)
