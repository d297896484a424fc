"""The offline CLIP tokenizer: CLIP's vocabulary, ids equal to open_clip's, save / load round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fp_diffusion.base.tokenizer import (
    NUM_MERGES,
    VOCAB_SIZE,
    build_clip_tokenizer,
    clip_vocab_and_merges,
    write_clip_tokenizer_files,
)

CAPTIONS = [
    "a photo of a young woman with long blond hair, smiling",
    "A photo of an OLD man with short black hair",
    "portrait of a middle-aged person wearing glasses, 3 freckles!",
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_clip_tokenizer(32)


def test_vocabulary_layout() -> None:
    vocab, merges = clip_vocab_and_merges()
    assert len(vocab) == VOCAB_SIZE == 49408 and len(merges) == NUM_MERGES == 48894
    assert vocab["!"] == 0 and vocab["!</w>"] == 256  # the byte symbols, then the same with </w>
    assert vocab["".join(merges[0].split())] == 512  # the first merge is the first merged token
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407


def test_ids_equal_open_clip(tokenizer) -> None:
    from open_clip.tokenizer import SimpleTokenizer, tokenize

    simple = SimpleTokenizer()
    for caption in CAPTIONS:
        # unpadded: <|startoftext|> + open_clip's BPE ids + <|endoftext|>
        assert tokenizer(caption).input_ids == [49406, *simple.encode(caption), 49407]
        # padded to 32: open_clip pads with 0, the HF tokenizer (like SD's) with <|endoftext|> (49407); the ids
        # up to and including the first end token are equal
        ours = tokenizer(caption, padding="max_length", max_length=32, truncation=True).input_ids
        theirs = tokenize([caption], context_length=32)[0].tolist()
        end = theirs.index(49407)
        assert ours[: end + 1] == theirs[: end + 1]
        assert set(ours[end + 1 :]) <= {49407} and set(theirs[end + 1 :]) <= {0}


def test_truncation_keeps_the_end_token() -> None:
    from open_clip.tokenizer import tokenize

    short = build_clip_tokenizer(8)
    ids = short(CAPTIONS[0], padding="max_length", truncation=True).input_ids
    assert len(ids) == 8 and ids[-1] == 49407
    assert ids == tokenize([CAPTIONS[0]], context_length=8)[0].tolist()  # both cut to 6 tokens + start + end


def test_round_trip(tokenizer, tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    tokenizer.save_pretrained(tmp_path / "tok")
    loaded = CLIPTokenizer.from_pretrained(tmp_path / "tok", local_files_only=True)
    assert loaded.model_max_length == 32 and len(loaded) == VOCAB_SIZE
    for caption in [*CAPTIONS, ""]:
        assert (
            loaded(caption, padding="max_length").input_ids
            == tokenizer(caption, padding="max_length").input_ids
        )
    assert torch.equal(
        loaded(CAPTIONS, padding="max_length", return_tensors="pt").input_ids,
        tokenizer(CAPTIONS, padding="max_length", return_tensors="pt").input_ids,
    )


def test_files_and_errors(tmp_path: Path) -> None:
    vocab_file, merges_file = write_clip_tokenizer_files(tmp_path)
    lines = merges_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2" and len(lines) == NUM_MERGES + 1
    assert vocab_file.name == "vocab.json"
    with pytest.raises(ValueError, match="model_max_length must be an int >= 3"):
        build_clip_tokenizer(2)
    import gzip

    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(gzip.compress(b"header\na b\n"))
    with pytest.raises(ValueError, match="does not hold CLIP's 48894 BPE merges"):
        clip_vocab_and_merges(bad)
