"""The embedded CLIP: config, loss, zero-shot accuracy, training, resume, and (slow) the default shapes run."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("open_clip")

from fp_metrics.clip_models import load_clip, save_clip  # noqa: E402
from fp_qdgs.embedded_clip import (  # noqa: E402
    CLIPTrainConfig,
    EmbeddedCLIPConfig,
    build_embedded_clip,
    contrastive_loss,
    train_clip,
    zero_shot_accuracy,
    zero_shot_accuracy_from_embeddings,
)

TINY = EmbeddedCLIPConfig(
    image_size=16,
    patch_size=8,
    vision_width=32,
    vision_layers=1,
    vision_heads=2,
    text_width=32,
    text_layers=1,
    text_heads=2,
    context_length=8,
    embed_dim=16,
)


def _colour_data(n: int = 64) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """``n`` noisy 16 x 16 images, red or blue, with captions "a red shape" / "a blue shape"."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    base = torch.tensor([[0.85, 0.1, 0.38], [0.12, 0.53, 0.9]])[labels].view(n, 3, 1, 1)
    images = (base + 0.05 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1)
    return images, [("a red shape", "a blue shape")[int(i)] for i in labels], labels


def test_the_model_cfg_is_open_clip_s() -> None:
    cfg = EmbeddedCLIPConfig().model_cfg()
    assert set(cfg) == {"embed_dim", "vision_cfg", "text_cfg"}
    assert cfg["vision_cfg"]["head_width"] * EmbeddedCLIPConfig().vision_heads == cfg["vision_cfg"]["width"]
    with pytest.raises(ValueError, match="patch_size"):
        EmbeddedCLIPConfig(image_size=64, patch_size=7)
    with pytest.raises(ValueError, match="text_heads"):
        EmbeddedCLIPConfig(text_width=100, text_heads=3)


def test_build_is_seeded_and_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b, c = (
        build_embedded_clip(TINY, seed=1),
        build_embedded_clip(TINY, seed=1),
        build_embedded_clip(TINY, seed=2),
    )
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.visual.conv1.weight, c.visual.conv1.weight)
    assert a.fp_model_cfg == TINY.model_cfg() and a.context_length == 8


def test_contrastive_loss_exact_values() -> None:
    e = torch.eye(2)
    s = 3.0
    loss, accuracy = contrastive_loss(e, e, torch.tensor([0, 1]), s)
    assert float(loss) == pytest.approx(math.log1p(math.exp(-s)))  # -log(e^s / (e^s + 1))
    assert float(accuracy) == 1.0
    # identical captions: the targets are uniform over both texts
    loss, accuracy = contrastive_loss(e, e, torch.tensor([5, 5]), s)
    assert float(loss) == pytest.approx(math.log(math.exp(s) + 1) - s / 2)
    assert float(accuracy) == 1.0
    # swapped texts: every image's nearest text has another caption
    loss, accuracy = contrastive_loss(e, e.flip(0), torch.tensor([0, 1]), s)
    assert float(loss) == pytest.approx(math.log1p(math.exp(s)))
    assert float(accuracy) == 0.0


def test_zero_shot_accuracy_from_hand_made_embeddings() -> None:
    prompts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    images = torch.tensor([[2.0, 1.0], [0.1, 0.9], [1.0, 3.0], [1.0, 1.0]])  # nearest: 0, 1, 1, tie -> 0
    assert zero_shot_accuracy_from_embeddings(images, prompts, torch.tensor([0, 1, 1, 0])) == 1.0
    assert zero_shot_accuracy_from_embeddings(images, prompts, torch.tensor([0, 0, 1, 1])) == 0.5
    assert zero_shot_accuracy_from_embeddings(images, prompts, torch.tensor([1, 0, 0, 1])) == 0.0
    with pytest.raises(ValueError, match="labels"):
        zero_shot_accuracy_from_embeddings(images, prompts, torch.tensor([0, 1, 2, 0]))


class _StubCLIP:
    """Image embedding = the image's mean over (H, W) of its first two channels; texts by a fixed table."""

    table = {"first": torch.tensor([1.0, 0.0]), "second": torch.tensor([0.0, 1.0])}

    def encode_images(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        return images[:, :2].mean(dim=(2, 3))

    def encode_texts(self, prompts: list[str]) -> torch.Tensor:
        return torch.stack([self.table[p] for p in prompts])


def test_zero_shot_accuracy_with_an_encoder() -> None:
    images = torch.zeros(3, 3, 4, 4)
    images[0, 0], images[1, 1], images[2, 1] = 1.0, 1.0, 1.0
    assert zero_shot_accuracy(
        _StubCLIP(), images, torch.tensor([0, 1, 0]), ("first", "second")
    ) == pytest.approx(2 / 3)
    assert zero_shot_accuracy(
        _StubCLIP(), images, torch.tensor([1, 0, 1]), ("second", "first")
    ) == pytest.approx(2 / 3)


def _train(tmp_path: Path, name: str, config: CLIPTrainConfig, log=None) -> tuple[torch.nn.Module, list]:
    images, captions, _ = _colour_data()
    records: list = []

    def record(metrics, step):
        records.append((step, dict(metrics)))
        if log is not None:
            log(metrics, step)

    model = build_embedded_clip(TINY, seed=0)
    model = train_clip(
        model, images, captions, config, checkpoint_dir=tmp_path / name, log=record, progress=False
    )
    return model, records


def test_training_lowers_the_loss_and_learns_the_colours(tmp_path: Path) -> None:
    config = CLIPTrainConfig(epochs=6, batch_size=16, lr=3e-3, warmup_steps=2, cpu=True)
    model, records = _train(tmp_path, "run", config)
    epochs = [m["epoch/loss"] for _, m in records if "epoch/loss" in m]
    assert len(epochs) == 6 and epochs[-1] < epochs[0] - 0.2
    steps = [m for _, m in records if "train/loss" in m]
    assert {"train/loss", "train/logit_scale", "train/batch_accuracy", "train/lr"} <= set(steps[0])
    assert all(m["train/logit_scale"] <= 100.0 + 1e-4 for m in steps)
    images, _, labels = _colour_data()
    assert zero_shot_accuracy(model, images, labels, ("a red shape", "a blue shape")) == 1.0
    # the saved and reloaded model gives the same accuracy and embeddings
    clip = load_clip(save_clip(model, tmp_path / "saved", context_length=TINY.context_length))
    assert zero_shot_accuracy(clip, images, labels, ("a red shape", "a blue shape")) == 1.0


class _Killed(RuntimeError):
    pass


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    config = CLIPTrainConfig(
        epochs=2, batch_size=16, lr=3e-3, warmup_steps=2, checkpoint_every=3, keep_checkpoints=5, cpu=True
    )
    reference, _ = _train(tmp_path, "reference", config)

    def kill(metrics, step):
        if step == 5 and "train/loss" in metrics:
            raise _Killed("simulated crash after step 5")

    with pytest.raises(_Killed):
        _train(tmp_path, "killed", config, log=kill)
    resumed, records = _train(tmp_path, "killed", config)
    assert min(step for step, m in records if "train/loss" in m) == 4  # steps 1-3 come from checkpoint 3
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_training_refuses_bad_inputs(tmp_path: Path) -> None:
    images, captions, _ = _colour_data(8)
    model = build_embedded_clip(TINY)
    with pytest.raises(ValueError, match="captions"):
        train_clip(
            model, images, captions[:-1], CLIPTrainConfig(epochs=1, batch_size=4), checkpoint_dir=tmp_path
        )
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_clip(model, images, captions, CLIPTrainConfig(epochs=1, batch_size=16), checkpoint_dir=tmp_path)


@pytest.mark.slow
def test_the_default_config_learns_the_shapes_prompts(tmp_path: Path) -> None:
    """The default config, 8 epochs on 4000 shapes + splatters, 2 threads: zero-shot >= 0.9 on all three pairs."""
    from fp_qdgs.shapes.render import make_clip_training_set, make_shapes, make_splatters

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        images, captions = make_clip_training_set(4000, seed=0)
        start = time.perf_counter()
        model = train_clip(
            build_embedded_clip(EmbeddedCLIPConfig()),
            images,
            captions,
            CLIPTrainConfig(epochs=8),
            checkpoint_dir=tmp_path / "ckpt",
            progress=False,
        )
        seconds = time.perf_counter() - start
        test = make_shapes(1000, 0.5, seed=123)
        colour = zero_shot_accuracy(model, test.images, test.colour, ("A red shape", "A blue shape"))
        shape = zero_shot_accuracy(
            model, test.images, test.shape, ("A triangle with 3 edges", "A square or diamond with 4 edges")
        )
        mixed = torch.cat([test.images, make_splatters(1000, seed=123)])
        kind = torch.cat([torch.zeros(1000, dtype=torch.int64), torch.ones(1000, dtype=torch.int64)])
        objective = zero_shot_accuracy(
            model, mixed, kind, ("A regular square or a triangle.", "Splatters of colors.")
        )
    finally:
        torch.set_num_threads(threads)
    print(
        f"train {seconds:.1f} s; zero-shot colour {colour:.3f}, shape {shape:.3f}, objective {objective:.3f}"
    )
    assert colour >= 0.9 and shape >= 0.9 and objective >= 0.9
