"""Tiny latent diffusion bases for the ControlNet tests (no downloads): a 4x VAE, a two-level UNet, a small CLIP
text encoder and a byte-level CLIP tokenizer with no merges (its vocab.json / merges.txt written to a folder)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from fp_diffusion.base.components import BaseComponents

TOKENS = 16  # the tokenizer's model_max_length and the text encoder's positions


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins of byte-level BPE (GPT-2 / CLIP), in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def tiny_tokenizer(directory: Path):
    """A ``CLIPTokenizer`` over single bytes (514 tokens), files written under ``directory``."""
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    vocab = {token: i for i, token in enumerate(chars + [c + "</w>" for c in chars])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=TOKENS
    )


def tiny_base(
    directory: Path,
    *,
    resolution: int = 32,
    block_out_channels: tuple[int, ...] = (32, 64),
    vae_channels: tuple[int, ...] = (16, 32, 32),
    prediction_type: str = "epsilon",
    seed: int = 0,
) -> BaseComponents:
    """A seeded tiny base; the VAE downsamples by ``2 ** (len(vae_channels) - 1)`` (4 by default)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    factor = 2 ** (len(vae_channels) - 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(vae_channels),
        block_out_channels=vae_channels,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=resolution,
    )
    levels = len(block_out_channels)
    unet = UNet2DConditionModel(
        sample_size=resolution // factor,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1),
        block_out_channels=block_out_channels,
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    tokenizer = tiny_tokenizer(directory / "tokenizer")
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = DDPMScheduler(num_train_timesteps=100, prediction_type=prediction_type)
    return BaseComponents(vae, unet, text_encoder, tokenizer, scheduler, name="tiny", resolution=resolution)


def tiny_unet(seed: int = 0):
    """A random-weight UNet2DConditionModel (74 k parameters): 8 x 8 latents, cross-attention width 8."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        attention_head_dim=2,
        norm_num_groups=4,
    )
