"""SDXL as a base, offline: a tiny SDXL-shaped pipeline in a fake Hugging Face cache loads by SDXL_HUB_ID
(with and without the fp16 VAE fix), prompts encode as diffusers' SDXL pipeline does, one FairHuman LoRA and
one ControlNet step run on it, generation gives images in [0, 1], and missing files are named."""

from __future__ import annotations

import functools
import socket
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from fp_core.weights import WeightsNotFoundError
from fp_diffusion.base import (
    SDXL_HUB_ID,
    SDXL_VAE_FIX,
    BaseComponents,
    build_clip_tokenizer,
    load_base,
    save_base,
)
from fp_diffusion.fairhuman import FairHumanTrainConfig, generate_scenes, train_fairhuman

TOKENS, RES = 8, 32  # the tokenizers' model_max_length, the image side (the VAE downsamples by 4)
D1, D2, PROJ, TIME = 16, 24, 12, 4  # encoder widths, encoder 2's projection, the UNet's time-id embedding
PROMPTS = ["a photo of a woman waving", "a man"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _vae(seed: int):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 16, 16),
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=RES,
    )


def _text_config(tokenizer, hidden: int, **extra):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=TOKENS, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **extra,
    )  # fmt: skip


@functools.cache
def _tokenizers() -> tuple:
    """CLIP's tokenizer twice (built once per session: a few seconds), the second padding with "!" as SDXL's."""
    return build_clip_tokenizer(TOKENS), build_clip_tokenizer(TOKENS, pad_token="!")


def tiny_sdxl() -> BaseComponents:
    """A seeded SDXL-shaped base: text_time UNet (cross-attention D1 + D2), two CLIP encoders, a 4x VAE."""
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, tokenizer_2 = _tokenizers()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_text_config(tokenizer, D1))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer_2, D2, projection_dim=PROJ))
    unet = UNet2DConditionModel(
        sample_size=RES // 4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=D1 + D2, attention_head_dim=4, norm_num_groups=8,
        addition_embed_type="text_time", addition_time_embed_dim=TIME,
        projection_class_embeddings_input_dim=6 * TIME + PROJ,
    )  # fmt: skip
    scheduler = EulerDiscreteScheduler(num_train_timesteps=100)
    return BaseComponents(
        _vae(1), unet, text_encoder, tokenizer, scheduler, "tiny-sdxl", RES, text_encoder_2, tokenizer_2
    )


def _snapshot(cache: Path, repo_id: str) -> Path:
    """``cache/models--owner--name/snapshots/<COMMIT>/`` with ``refs/main`` naming it (the hub cache layout)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return repo / "snapshots" / COMMIT


def _save_tokenizer_files(folder: Path) -> None:
    from fp_diffusion.base import write_clip_tokenizer_files

    if not (folder / "vocab.json").is_file():  # transformers 5 writes only tokenizer.json
        write_clip_tokenizer_files(folder)


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two hub caches with the tiny SDXL (saved by StableDiffusionXLPipeline.save_pretrained); "fixed" also
    holds a VAE under SDXL_VAE_FIX (other weights than SDXL's own VAE)."""
    from diffusers import StableDiffusionXLPipeline

    root = tmp_path_factory.mktemp("sdxl-caches")
    parts = tiny_sdxl()
    pipe = StableDiffusionXLPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, text_encoder_2=parts.text_encoder_2,
        tokenizer=parts.tokenizer, tokenizer_2=parts.tokenizer_2, unet=parts.unet,
        scheduler=parts.noise_scheduler, add_watermarker=False,
    )  # fmt: skip
    snapshot = _snapshot(root / "plain", SDXL_HUB_ID)
    pipe.save_pretrained(snapshot, safe_serialization=True)
    for sub in ("tokenizer", "tokenizer_2"):
        _save_tokenizer_files(snapshot / sub)
    (root / "fixed").mkdir()
    name = f"models--{SDXL_HUB_ID.replace('/', '--')}"
    (root / "fixed" / name).symlink_to(root / "plain" / name, target_is_directory=True)
    _vae(2).save_pretrained(_snapshot(root / "fixed", SDXL_VAE_FIX), safe_serialization=True)
    return {"plain": root / "plain", "fixed": root / "fixed"}


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caches: dict[str, Path]):
    """``hub(kind)`` points the hub cache at caches[kind] (offline, sockets refused, empty fp weight folder)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "fp-weights"))

    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)

    def use(kind: str) -> Path:
        monkeypatch.setenv("HF_HUB_CACHE", str(caches[kind]))
        return caches[kind]

    return use


def _same_weights(a, b) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_load_sdxl_from_the_cache_with_the_vae_fix(hub) -> None:
    hub("fixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fix is there: no fp16 warning
        base = load_base(SDXL_HUB_ID)
    reference = tiny_sdxl()
    assert base.is_sdxl and base.name == SDXL_HUB_ID and base.resolution == RES  # 8 latents x 4
    assert type(base.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
    assert type(base.noise_scheduler).__name__ == "DDPMScheduler"  # SDXL ships Euler: training takes DDPM
    assert base.tokenizer_2.pad_token == "!" and base.tokenizer.pad_token == "<|endoftext|>"
    for name in ("unet", "text_encoder", "text_encoder_2"):
        assert _same_weights(getattr(base, name), getattr(reference, name)), name
    assert _same_weights(base.vae, _vae(2)) and not _same_weights(base.vae, reference.vae)
    assert not any(m.training for m in (base.vae, base.unet, base.text_encoder, base.text_encoder_2))


def test_load_sdxl_without_the_fix_warns_about_fp16(hub) -> None:
    hub("plain")
    with pytest.warns(UserWarning, match=r"sdxl-vae-fp16-fix is not cached.*overflow in float16"):
        base = load_base(SDXL_HUB_ID, dtype=torch.bfloat16)
    assert base.is_sdxl and _same_weights(base.vae, _vae(1).to(torch.bfloat16))
    assert next(base.text_encoder_2.parameters()).dtype == torch.bfloat16


def test_missing_files_name_text_encoder_2(hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(WeightsNotFoundError) as caught:
        load_base(SDXL_HUB_ID)
    message = str(caught.value)
    for name in ("text_encoder_2/model.safetensors", "tokenizer_2/vocab.json", "unet/config.json"):
        assert name in message
    assert f"`hf download {SDXL_HUB_ID}`" in message


def test_encode_prompt_matches_the_sdxl_pipeline() -> None:
    from diffusers import StableDiffusionXLPipeline

    base = tiny_sdxl().freeze()
    with torch.no_grad():
        states, pooled = base.encode_prompt(PROMPTS, "cpu")
        pipe = StableDiffusionXLPipeline(
            vae=base.vae, text_encoder=base.text_encoder, text_encoder_2=base.text_encoder_2,
            tokenizer=base.tokenizer, tokenizer_2=base.tokenizer_2, unet=base.unet,
            scheduler=base.noise_scheduler, add_watermarker=False,
        )  # fmt: skip
        expected, _, expected_pooled, _ = pipe.encode_prompt(
            PROMPTS, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False
        )
    assert states.shape == (2, TOKENS, D1 + D2) and pooled.shape == (2, PROJ)
    assert torch.equal(states, expected) and torch.equal(pooled, expected_pooled)
    added = base.added_cond_kwargs(pooled, 48)
    assert torch.equal(added["text_embeds"], pooled)
    assert added["time_ids"].tolist() == [[48.0, 48.0, 0.0, 0.0, 48.0, 48.0]] * 2
    reference = pipe._get_add_time_ids((48, 48), (0, 0), (48, 48), pooled.dtype, PROJ)
    assert torch.equal(added["time_ids"][:1], reference)
    assert base.added_cond_kwargs(pooled)["time_ids"][0, 0] == RES
    with pytest.raises(ValueError, match="pooled text embeddings"):
        base.added_cond_kwargs(None)


def test_sd1_encoding_is_the_last_hidden_state() -> None:
    base = tiny_sdxl()
    sd1 = BaseComponents(
        base.vae, base.unet, base.text_encoder, base.tokenizer, base.noise_scheduler, "sd1", RES
    )
    assert not sd1.is_sdxl
    ids = base.tokenizer(
        PROMPTS, max_length=TOKENS, padding="max_length", truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        states, pooled = sd1.encode_prompt(PROMPTS, "cpu")
        assert torch.equal(states, base.text_encoder(ids.input_ids).last_hidden_state) and pooled is None
    assert sd1.added_cond_kwargs(None) is None
    with pytest.raises(ValueError, match="both text_encoder_2 and tokenizer_2"):
        BaseComponents(base.vae, base.unet, base.text_encoder, base.tokenizer, base.noise_scheduler, "x", RES,
                       text_encoder_2=base.text_encoder_2)  # fmt: skip


def test_an_sdxl_folder_round_trips(tmp_path: Path) -> None:
    parts = tiny_sdxl()
    save_base(parts, tmp_path / "xl")
    loaded = load_base(tmp_path / "xl")
    assert loaded.is_sdxl and loaded.resolution == RES
    assert _same_weights(loaded.text_encoder_2, parts.text_encoder_2) and _same_weights(loaded.vae, parts.vae)
    (tmp_path / "xl" / "text_encoder_2" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"not an SDXL layout folder: it lacks text_encoder_2/model"):
        load_base(tmp_path / "xl")


class Scenes(Dataset):
    """Two scenes at RES: pixels in [-1, 1], a face box, a hand box, a pose condition."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(2):
            face, hand = torch.zeros(RES, RES), torch.zeros(RES, RES)
            face[4:12, 6 + i : 14 + i] = 1
            hand[20:26, 18:24] = 1
            pixels = torch.rand(3, RES, RES, generator=gen) * 2 - 1
            pose = torch.rand(3, RES, RES, generator=gen)
            self.items.append({"pixel_values": pixels, "face_mask": face, "hand_mask": hand,
                               "conditions": {"pose": pose}, "caption": PROMPTS[i], "file_name": f"{i}.png"})  # fmt: skip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


@pytest.mark.parametrize("module", ["lora", "controlnet"])
def test_one_fairhuman_step_on_sdxl(hub, tmp_path: Path, module: str) -> None:
    hub("fixed")
    base = load_base(SDXL_HUB_ID)
    config = FairHumanTrainConfig(module=module, condition="pose", batch_size=2, lr=1e-3, lora_rank=2, cpu=True,
                                  epochs=1, max_steps_per_epoch=1, weighting="mpd")  # fmt: skip
    logs: list[dict] = []
    trained = train_fairhuman(config, base, Scenes(), output_dir=tmp_path / "out", checkpoint_dir=tmp_path / "ck",
                              log=lambda metrics, step: logs.append(dict(metrics)), progress=False)  # fmt: skip
    steps = [m for m in logs if "train/loss" in m]
    assert len(steps) == 1
    losses = [steps[0][f"train/loss_{name}"] for name in ("global", "face", "hand")]
    assert all(torch.isfinite(torch.tensor(losses))) and min(losses) > 0
    assert steps[0]["train/grad_norm"] > 0 and torch.isfinite(torch.tensor(steps[0]["train/grad_norm"]))
    if module == "controlnet":
        assert (
            type(trained).__name__ == "ControlNetModel" and trained.config.addition_embed_type == "text_time"
        )
        assert (tmp_path / "out" / "final" / "diffusion_pytorch_model.safetensors").is_file()
    else:
        assert (tmp_path / "out" / "final").is_dir()


def test_generate_scenes_on_sdxl() -> None:
    from diffusers import ControlNetModel

    base = tiny_sdxl().freeze()
    images = generate_scenes(base, None, PROMPTS, seeds=[3, 4], steps=2, guidance_scale=2.0)
    assert images.shape == (2, 3, RES, RES) and images.dtype == torch.float32
    assert 0 <= float(images.min()) and float(images.max()) <= 1 and torch.isfinite(images).all()
    alone = generate_scenes(base, None, PROMPTS[1:], seeds=[4], steps=2, guidance_scale=2.0)
    assert torch.allclose(images[1], alone[0], atol=1e-5)  # image i depends only on seeds[i]
    torch.manual_seed(5)
    controlnet = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(8, 16, 16)).eval()
    poses = torch.rand(2, 3, RES, RES, generator=torch.Generator().manual_seed(6))
    controlled = generate_scenes(base, controlnet, PROMPTS, poses, seeds=[3, 4], steps=2, guidance_scale=2.0)
    assert (
        controlled.shape == (2, 3, RES, RES) and 0 <= float(controlled.min()) <= float(controlled.max()) <= 1
    )
    with pytest.raises(ValueError, match="needs conditions"):
        generate_scenes(base, controlnet, PROMPTS, None, seeds=[3, 4], steps=1)
