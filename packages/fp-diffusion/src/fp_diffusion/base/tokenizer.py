"""An offline CLIP tokenizer: the real CLIP BPE vocabulary, built from the merges open_clip ships.

OpenAI's CLIP (and so Stable Diffusion 1.x's ``tokenizer/``) uses a byte-level BPE of 49408 tokens: the 256
byte-to-unicode symbols, the same 256 with the end-of-word marker ``</w>``, one token per merge for the first
``49152 - 256 - 2 = 48894`` merges of ``bpe_simple_vocab_16e6.txt.gz``, then ``<|startoftext|>`` (49406) and
``<|endoftext|>`` (49407). open_clip ships that merge file, so the vocabulary is rebuilt here without any
download, written as ``vocab.json`` + ``merges.txt`` and loaded as a ``transformers.CLIPTokenizer`` (which
diffusers' pipelines expect). As in SD's tokenizer, the pad and unknown tokens are ``<|endoftext|>``.

Compared with open_clip's ``SimpleTokenizer`` (which pads with 0 and names its special tokens
``<start_of_text>`` / ``<end_of_text>`` but gives them the same ids), the ids up to and including the first
end-of-text token are identical for ordinary lower-case captions (tests/test_base_tokenizer.py).
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fp_core.atomic import write_text

__all__ = [
    "BOS_TOKEN",
    "EOS_TOKEN",
    "NUM_MERGES",
    "VOCAB_SIZE",
    "build_clip_tokenizer",
    "clip_vocab_and_merges",
    "write_clip_tokenizer_files",
]

VOCAB_SIZE = 49408
NUM_MERGES = 49152 - 256 - 2
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
MERGES_HEADER = "#version: 0.2"


def _default_bpe() -> Path:
    from open_clip.tokenizer import default_bpe

    return Path(default_bpe())


def clip_vocab_and_merges(bpe_path: str | os.PathLike[str] | None = None) -> tuple[dict[str, int], list[str]]:
    """``(vocab token -> id, merges "a b" in rank order)`` of CLIP, from open_clip's gzipped merge file.

    Raises ``ValueError`` naming the file when it holds fewer merges than CLIP's 48894.
    """
    from open_clip.tokenizer import bytes_to_unicode

    path = Path(bpe_path) if bpe_path is not None else _default_bpe()
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = [line for line in lines[1 : NUM_MERGES + 1] if line.strip()]
    if len(merges) != NUM_MERGES or any(len(m.split()) != 2 for m in merges):
        raise ValueError(f"{path} does not hold CLIP's {NUM_MERGES} BPE merges (found {len(merges)} lines)")
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise ValueError(f"{path} gives {len(vocab)} distinct tokens, expected CLIP's {VOCAB_SIZE}")
    return vocab, merges


def write_clip_tokenizer_files(
    directory: str | os.PathLike[str], bpe_path: str | os.PathLike[str] | None = None
) -> tuple[Path, Path]:
    """Write ``directory/vocab.json`` and ``directory/merges.txt`` (CLIP's layout); returns both paths."""
    vocab, merges = clip_vocab_and_merges(bpe_path)
    directory = Path(directory)
    vocab_file = write_text(directory / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    merges_file = write_text(directory / "merges.txt", "\n".join([MERGES_HEADER, *merges]) + "\n")
    return vocab_file, merges_file


def build_clip_tokenizer(model_max_length: int = 32, **kwargs: Any) -> Any:
    """A ``transformers.CLIPTokenizer`` with CLIP's vocabulary that pads / truncates to ``model_max_length``
    tokens (start and end tokens included). ``kwargs`` go to ``CLIPTokenizer``.

    The files are written to a temporary folder and read back (the tokenizer keeps no reference to it);
    ``save_pretrained`` writes its own copy.
    """
    from transformers import CLIPTokenizer

    if isinstance(model_max_length, bool) or not isinstance(model_max_length, int) or model_max_length < 3:
        raise ValueError(
            f"model_max_length must be an int >= 3 (start, a token, end), got {model_max_length!r}"
        )
    with tempfile.TemporaryDirectory(prefix="fp-clip-tokenizer-") as tmp:
        vocab_file, merges_file = write_clip_tokenizer_files(tmp)
        return CLIPTokenizer(
            vocab=str(vocab_file),
            merges=str(merges_file),
            model_max_length=model_max_length,
            **kwargs,
        )
