"""The synthetic CelebAMask-HQ-layout renderer: file formats, determinism, masks vs image and attributes."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fp_pipeline.synth import SynthConfig, SynthConfigError, render_dataset, render_face
from fp_pipeline.synth import dataset as synth_dataset
from fp_pipeline.synth.geometry import Pose
from fp_pipeline.synth.layout import mask_path
from fp_pipeline.synth.paints import Paint
from fp_pipeline.synth.population import allot_groups, plan_dataset, sample_image_spec, split_counts
from fp_pipeline.synth.raster import paint_coverage, part_masks
from fp_pipeline.synth.shading import compose

# Written out here (not imported) so that the test checks the renderer against the release's conventions.
PARTS = [
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
]  # fmt: skip
ATTRIBUTE_LINE = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
)
LABEL_ORDERS = {
    "official": PARTS,
    "zllrunning": ["skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r", "nose",
                   "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat"],
    "farl": ["neck", "skin", "cloth", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth",
             "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l"],
}  # fmt: skip

# Accessories made common so that both sides of every "attribute <=> mask" check occur in 24 images.
SMALL = {
    "seed": 3,
    "num_identities": 8,
    "images_per_identity": 3,
    "image_size": 64,
    "eyeglasses_prob": 0.45,
    "sunglasses_fraction": 0.3,
    "hat_prob": 0.35,
    "earrings_prob": 0.8,
    "necklace_prob": 0.7,
    "necktie_prob": 0.6,
    "smiling_prob": 0.5,
    "mouth_open_prob": 0.3,
    "blur_prob": 0.2,
    "skin_tone_groups": [
        {"name": "light", "tone": [0.0, 0.45], "weight": 3},
        {"name": "dark", "tone": [0.6, 1.0], "weight": 1, "hair_colours": {"black": 1.0}},
    ],
    "splits": {"train": 0.5, "val": 0.25, "test": 0.25},
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthConfig, Path, dict]:
    config = SynthConfig.from_dict(SMALL)
    root = tmp_path_factory.mktemp("synth") / "out"
    manifest = render_dataset(config, root, progress=False)
    return config, root, manifest


# ---------------------------------------------------------------- parsing, written independently of the writer


def read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text, path
    return text[:-1].split("\n")


def parse_attributes(root: Path) -> tuple[list[str], list[list[int]]]:
    lines = read_lines(root / "CelebAMask-HQ-attribute-anno.txt")
    count = int(lines[0])
    assert lines[1] == ATTRIBUTE_LINE
    rows = []
    for k, line in enumerate(lines[2:]):
        match = re.fullmatch(r"(\d+)\.jpg  (-?1(?: -?1){39})", line)
        assert match, line
        assert int(match.group(1)) == k
        rows.append([int(v) for v in match.group(2).split(" ")])
    assert len(rows) == count
    return lines[1].split(" "), rows


def parse_mapping(root: Path) -> list[tuple[int, str]]:
    lines = read_lines(root / "CelebA-HQ-to-CelebA-mapping.txt")
    assert lines[0] == "idx         orig_idx        orig_file"
    rows = []
    for k, line in enumerate(lines[1:]):
        idx, orig_idx, orig_file = line.split()
        assert int(idx) == k
        assert orig_file == f"{int(orig_idx) + 1:06d}.jpg"
        rows.append((int(orig_idx), orig_file))
    return rows


def parse_two_columns(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in read_lines(path):
        name, value = line.split(" ")
        rows.append((name, int(value)))
    return rows


def parse_skin_tone(root: Path) -> tuple[dict[int, str], list[tuple[float, int]]]:
    lines = read_lines(root / "fp_skin_tone.txt")
    assert lines[0].startswith("# groups: ")
    groups = {
        int(k): name for k, name in (item.split("=") for item in lines[0][len("# groups: ") :].split(" "))
    }
    assert lines[1] == "image tone group"
    rows = []
    for k, line in enumerate(lines[2:]):
        match = re.fullmatch(r"(\d+)\.jpg (\d\.\d{4}) (\d+)", line)
        assert match, line
        assert int(match.group(1)) == k
        rows.append((float(match.group(2)), int(match.group(3))))
    return groups, rows


def present_parts(root: Path, index: int) -> set[str]:
    folder = root / "CelebAMask-HQ-mask-anno" / str(index // 2000)
    return {p.name[6:-4] for p in folder.glob(f"{index:05d}_*.png")}


def read_mask(root: Path, index: int, part: str) -> np.ndarray:
    return np.asarray(
        Image.open(root / "CelebAMask-HQ-mask-anno" / str(index // 2000) / f"{index:05d}_{part}.png")
    )


def merged_labels(root: Path, index: int, order: list[str], size: int) -> np.ndarray:
    labels = np.zeros((size, size), dtype=np.uint8)
    for part in order:
        if part in present_parts(root, index):
            labels[read_mask(root, index, part) > 0] = PARTS.index(part) + 1  # official ids, any merge order
    return labels


# ---------------------------------------------------------------- the layout and the formats


def test_images_and_masks_follow_the_release_layout(small: tuple[SynthConfig, Path, dict]) -> None:
    config, root, _ = small
    n = config.num_images
    assert sorted(p.name for p in (root / "CelebA-HQ-img").iterdir()) == sorted(f"{i}.jpg" for i in range(n))
    for i in range(n):
        with Image.open(root / "CelebA-HQ-img" / f"{i}.jpg") as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 64))
    assert [p.name for p in (root / "CelebAMask-HQ-mask-anno").iterdir()] == ["0"]
    pattern = re.compile(r"(\d{5})_(" + "|".join(PARTS) + r")\.png")
    files = sorted((root / "CelebAMask-HQ-mask-anno" / "0").iterdir())
    assert files
    for path in files:
        match = pattern.fullmatch(path.name)
        assert match, path.name
        assert int(match.group(1)) < n
        with Image.open(path) as mask:
            assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (64, 64))
            values = set(np.unique(np.asarray(mask)).tolist())
        assert values == {0, 255}, path.name  # white on black, and a file only when the part is there
    for i in range(n):  # every image has at least its face, neck and clothes
        assert {"skin", "nose", "neck", "cloth"} <= present_parts(root, i)


def test_mask_path_puts_2000_images_per_folder(tmp_path: Path) -> None:
    assert mask_path(tmp_path, 1999, "skin") == tmp_path / "CelebAMask-HQ-mask-anno" / "0" / "01999_skin.png"
    assert (
        mask_path(tmp_path, 2000, "l_eye") == tmp_path / "CelebAMask-HQ-mask-anno" / "1" / "02000_l_eye.png"
    )


def test_text_files_parse_and_agree(small: tuple[SynthConfig, Path, dict]) -> None:
    config, root, manifest = small
    n = config.num_images
    names, rows = parse_attributes(root)
    assert len(names) == 40 and len(rows) == n
    mapping = parse_mapping(root)
    assert len(mapping) == n
    orig = [o for o, _ in mapping]
    assert len(set(orig)) == n and all(0 <= o < 202_599 for o in orig)
    files = sorted(f for _, f in mapping)
    partition = parse_two_columns(root / "list_eval_partition.txt")
    identity = parse_two_columns(root / "identity_CelebA.txt")
    assert [f for f, _ in partition] == files  # every image, sorted by file name
    assert [f for f, _ in identity] == files
    assert {code for _, code in partition} == {0, 1, 2}
    assert all(k >= 1 for _, k in identity)
    by_split = Counter(code for _, code in partition)
    counts = manifest["counts"]
    assert (counts["train"], counts["val"], counts["test"]) == (by_split[0], by_split[1], by_split[2])
    assert counts["total"] == n and counts["identities"] == config.num_identities
    assert counts["attributes"] == {name: sum(row[k] == 1 for row in rows) for k, name in enumerate(names)}


def test_manifest_records_format_seed_and_config(small: tuple[SynthConfig, Path, dict]) -> None:
    config, root, manifest = small
    on_disk = json.loads((root / "fp_synth_manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["format"] == "CelebAMask-HQ"
    assert manifest["seed"] == 3
    assert SynthConfig.from_dict(manifest["config"]) == config
    tones = Counter(group for _, group in parse_skin_tone(root)[1])
    assert manifest["counts"]["skin_tone"] == {"light": tones[0], "dark": tones[1]}
    for part in PARTS:
        assert manifest["counts"]["parts"][part] == sum(
            part in present_parts(root, i) for i in range(config.num_images)
        )


def test_identities_split_cleanly_and_keep_their_traits(small: tuple[SynthConfig, Path, dict]) -> None:
    config, root, _ = small
    split_of = dict(parse_two_columns(root / "list_eval_partition.txt"))
    identity_of = dict(parse_two_columns(root / "identity_CelebA.txt"))
    mapping = parse_mapping(root)
    _, tones = parse_skin_tone(root)
    splits, tone_values, images = defaultdict(set), defaultdict(set), Counter()
    for i, (_, orig_file) in enumerate(mapping):
        person = identity_of[orig_file]
        splits[person].add(split_of[orig_file])
        tone_values[person].add(tones[i])
        images[person] += 1
    assert len(images) == config.num_identities
    assert set(images.values()) == {config.images_per_identity}
    assert all(len(s) == 1 for s in splits.values())  # no identity in two splits
    assert all(len(t) == 1 for t in tone_values.values())  # one skin tone (and group) per identity
    # stratified by group: 6 light identities -> 2 / 2 / 2, 2 dark ones -> 1 train, 1 val, 0 test
    per_group_split = Counter()
    for person, person_splits in splits.items():
        group = next(tones[i][1] for i, (_, f) in enumerate(mapping) if identity_of[f] == person)
        per_group_split[group, next(iter(person_splits))] += 1
    assert per_group_split == {(0, 0): 2, (0, 1): 2, (0, 2): 2, (1, 0): 1, (1, 1): 1}


def test_skin_tone_file_follows_the_groups(small: tuple[SynthConfig, Path, dict]) -> None:
    config, root, _ = small
    groups, rows = parse_skin_tone(root)
    assert groups == {0: "light", 1: "dark"}
    assert len(rows) == config.num_images
    for tone, group in rows:
        low, high = config.skin_tone_groups[group].tone
        assert low - 5e-5 <= tone <= high + 5e-5


# ---------------------------------------------------------------- determinism and atomicity


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_config_gives_byte_identical_files(
    small: tuple[SynthConfig, Path, dict], tmp_path: Path
) -> None:
    config, root, _ = small
    render_dataset(config, tmp_path / "again", progress=False)
    assert tree_bytes(tmp_path / "again") == tree_bytes(root)


def test_another_seed_gives_other_faces(small: tuple[SynthConfig, Path, dict], tmp_path: Path) -> None:
    config, root, _ = small
    render_dataset(replace(config, seed=4), tmp_path / "other", progress=False)
    first, second = tree_bytes(root), tree_bytes(tmp_path / "other")
    differing = [
        f"CelebA-HQ-img/{i}.jpg"
        for i in range(config.num_images)
        if first[f"CelebA-HQ-img/{i}.jpg"] != second[f"CelebA-HQ-img/{i}.jpg"]
    ]
    assert len(differing) == config.num_images
    assert first["CelebA-HQ-to-CelebA-mapping.txt"] != second["CelebA-HQ-to-CelebA-mapping.txt"]


def test_a_failed_render_leaves_the_previous_directory_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SynthConfig(num_identities=2, images_per_identity=2, image_size=32)
    out = tmp_path / "out"
    render_dataset(config, out, progress=False)
    before = tree_bytes(out)
    calls = []

    def failing_write_masks(*args: object) -> None:
        calls.append(args)
        if len(calls) == 3:
            raise OSError("disk full")

    monkeypatch.setattr(synth_dataset, "write_masks", failing_write_masks)
    with pytest.raises(OSError, match="disk full"):
        render_dataset(replace(config, seed=1), out, progress=False)
    assert tree_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary directory left behind


# ---------------------------------------------------------------- masks agree with the image and with each other


def test_every_label_order_merges_the_masks_to_the_same_map(small: tuple[SynthConfig, Path, dict]) -> None:
    """Masks overlap only where skin lies under an inner part, which every public order merges skin-first."""
    config, root, _ = small
    for i in range(config.num_images):
        merged = {name: merged_labels(root, i, order, 64) for name, order in LABEL_ORDERS.items()}
        assert np.array_equal(merged["official"], merged["zllrunning"]), i
        assert np.array_equal(merged["official"], merged["farl"]), i
        skin = read_mask(root, i, "skin") > 0
        inner = np.isin(
            merged["official"], [PARTS.index(p) + 1 for p in ("l_eye", "r_eye", "nose", "u_lip", "l_lip")]
        )
        assert (skin & inner).any(), i  # the skin continues under the inner features


def test_masks_match_what_is_drawn(small: tuple[SynthConfig, Path, dict]) -> None:
    config, root, _ = small
    plan = plan_dataset(config)
    for i in range(config.num_images):
        identity = plan.identities[plan.image_identity[i]]
        face = render_face(config, identity, sample_image_spec(config, i, identity))
        assert np.array_equal(merged_labels(root, i, PARTS, 64), face.labels), i
        image = np.asarray(face.image, dtype=float) / 255.0
        visible_skin = face.labels == PARTS.index("skin") + 1
        hair = face.labels == PARTS.index("hair") + 1
        cloth = face.labels == PARTS.index("cloth") + 1
        if hair.sum() >= 20:
            gap = np.abs(image[hair].mean(0) - image[visible_skin].mean(0)).sum()
            assert gap > 0.08, (i, gap)
        assert np.abs(image[cloth].mean(0) - image[visible_skin].mean(0)).sum() > 0.02, i


def test_coverage_plurality_labels_and_mixed_colours_on_a_hand_made_map() -> None:
    # One output pixel (supersample 4): 9 sub-pixels of face, 7 of hair -> label skin, colour 9/16 a + 7/16 b.
    paint_map = np.full((4, 4), int(Paint.HAIR_FRONT), dtype=np.uint8)
    paint_map.flat[:9] = int(Paint.FACE)
    coverage = paint_coverage(paint_map, size=1, supersample=4)
    assert coverage.shape == (len(Paint), 1, 1)
    assert coverage[int(Paint.FACE), 0, 0] == pytest.approx(9 / 16)
    assert coverage[int(Paint.HAIR_FRONT), 0, 0] == pytest.approx(7 / 16)
    labels, masks = part_masks(coverage, face_coverage=np.zeros((1, 1)))
    assert labels[0, 0] == PARTS.index("skin") + 1
    assert masks["skin"][0, 0] and not masks["hair"][0, 0]
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    colours = {paint: (lambda: np.zeros(3)) for paint in Paint}
    colours[Paint.FACE] = lambda: a
    colours[Paint.HAIR_FRONT] = lambda: b
    assert np.allclose(compose(coverage, colours)[0, 0], 9 / 16 * a + 7 / 16 * b)


def test_skin_mask_runs_under_an_eye_only_inside_the_face_outline() -> None:
    paint_map = np.full((4, 4), int(Paint.EYE_L), dtype=np.uint8)  # one output pixel, all eye
    coverage = paint_coverage(paint_map, size=1, supersample=4)
    _, inside = part_masks(coverage, face_coverage=np.array([[0.75]]))
    _, outside = part_masks(coverage, face_coverage=np.array([[0.25]]))
    assert inside["l_eye"][0, 0] and inside["skin"][0, 0]
    assert outside["l_eye"][0, 0] and not outside["skin"][0, 0]


def test_skin_colour_in_the_images_follows_the_tone_groups(small: tuple[SynthConfig, Path, dict]) -> None:
    config, root, _ = small
    _, tones = parse_skin_tone(root)
    brightness = defaultdict(list)
    for i, (_, group) in enumerate(tones):
        image = np.asarray(Image.open(root / "CelebA-HQ-img" / f"{i}.jpg"), dtype=float)
        labels = merged_labels(root, i, PARTS, 64)
        brightness[group].append(image[labels == 1].mean())
    assert np.mean(brightness[1]) < np.mean(brightness[0]) - 40


# ---------------------------------------------------------------- attributes


def test_attributes_agree_with_the_masks(small: tuple[SynthConfig, Path, dict]) -> None:
    config, root, _ = small
    names, rows = parse_attributes(root)
    column = {name: k for k, name in enumerate(names)}
    seen = defaultdict(set)
    for i, row in enumerate(rows):
        parts = present_parts(root, i)
        for attribute, part in [("Eyeglasses", "eye_g"), ("Wearing_Hat", "hat"), ("Wearing_Earrings", "ear_r"),
                                ("Wearing_Necklace", "neck_l"), ("Mouth_Slightly_Open", "mouth")]:  # fmt: skip
            assert (row[column[attribute]] == 1) == (part in parts), (i, attribute)
            seen[attribute].add(row[column[attribute]])
        if row[column["Smiling"]] == 1:
            assert "mouth" in parts, i
        if row[column["Bald"]] == 1:
            assert row[column["Male"]] == 1 and row[column["Bangs"]] == -1, i
        if "hair" not in parts:
            assert all(
                row[column[c]] == -1 for c in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
            ), i
        assert row[column["No_Beard"]] == -1 or (
            row[column["Goatee"]] == -1 and row[column["Mustache"]] == -1
        ), i
        hair_colours = sum(
            row[column[c]] == 1 for c in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
        )
        assert hair_colours <= 1, i
    assert all(values == {-1, 1} for values in seen.values()), dict(seen)  # both sides occurred


def test_default_config_is_small_128px_and_imbalanced() -> None:
    config = SynthConfig()
    assert config.image_size == 128
    assert 400 <= config.num_images <= 600 and 80 <= config.num_identities <= 130
    plan = plan_dataset(config)
    groups = Counter(identity.group for identity in plan.identities)
    assert groups[0] == 7 * groups[1]
    identity = plan.identities[0]
    face = render_face(config, identity, sample_image_spec(config, 0, identity))
    assert face.image.size == (128, 128) and face.labels.shape == (128, 128)


def test_skin_tone_mix_follows_the_config_on_a_larger_render(tmp_path: Path) -> None:
    groups = [
        {"name": "light", "tone": [0.0, 0.3], "weight": 5},
        {"name": "medium", "tone": [0.35, 0.6], "weight": 2},
        {"name": "dark", "tone": [0.7, 1.0], "weight": 1},
    ]
    config = SynthConfig.from_dict(
        {
            "num_identities": 40,
            "images_per_identity": 1,
            "image_size": 32,
            "supersample": 2,
            "skin_tone_groups": groups,
        }
    )
    manifest = render_dataset(config, tmp_path / "mix", progress=False)
    assert manifest["counts"]["skin_tone"] == {"light": 25, "medium": 10, "dark": 5}
    names, rows = parse_skin_tone(tmp_path / "mix")
    assert names == {0: "light", 1: "medium", 2: "dark"}
    assert Counter(g for _, g in rows) == {0: 25, 1: 10, 2: 5}
    big = plan_dataset(SynthConfig(num_identities=1000))  # plan only: cheap
    share = sum(identity.group == 0 for identity in big.identities) / 1000
    assert share == pytest.approx(7 / 8, abs=1e-3)
    males = sum(identity.male for identity in big.identities) / 1000
    assert males == pytest.approx(0.42, abs=0.05)


def test_apportionment_and_split_sizes_by_hand() -> None:
    assert allot_groups([7.0, 1.0], 128) == [112, 16]
    assert allot_groups([1.0, 1.0, 1.0], 10) == [4, 3, 3]
    assert allot_groups([5.0, 2.0, 1.0], 40) == [25, 10, 5]
    fractions = {"train": 0.8, "val": 0.1, "test": 0.1}
    assert split_counts(16, fractions) == {"train": 12, "val": 2, "test": 2}
    assert split_counts(112, fractions) == {"train": 90, "val": 11, "test": 11}
    assert split_counts(3, fractions) == {"train": 1, "val": 1, "test": 1}
    assert split_counts(2, fractions) == {"train": 2, "val": 0, "test": 0}
    assert split_counts(2, {"train": 0.5, "val": 0.25, "test": 0.25}) == {"train": 1, "val": 1, "test": 0}
    assert split_counts(1, {"train": 0.2, "val": 0.4, "test": 0.4}) == {"train": 1, "val": 0, "test": 0}
    assert split_counts(2, {"train": 0.0, "val": 0.5, "test": 0.5}) == {"train": 0, "val": 1, "test": 1}


def test_pose_inverts() -> None:
    pose = Pose(rotation_deg=17.0, scale=1.1, shift=(0.03, -0.02))
    points = np.random.default_rng(0).uniform(0, 1, (20, 2))
    assert np.allclose(pose.invert(pose.apply(points)), points)
    assert np.allclose(pose.apply(np.array([[0.5, 0.5]])), [[0.53, 0.48]])  # the centre only shifts


# ---------------------------------------------------------------- configuration


def test_config_round_trips_through_yaml() -> None:
    config = SynthConfig.from_dict(SMALL)
    text = yaml.safe_dump(config.to_dict())
    assert SynthConfig.from_dict(yaml.safe_load(text)) == config
    assert SynthConfig.from_dict({}) == SynthConfig() == SynthConfig.from_dict(None)
    assert SynthConfig.from_dict({"seed": 7}).seed == 7


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"colour_mix": 1}, r"unknown key 'colour_mix'"),
        ({"image_size": "big"}, r"synth\.image_size"),
        ({"image_size": 16}, r"synth\.image_size: expected an integer in \[32"),
        ({"num_identities": True}, r"synth\.num_identities"),
        ({"hat_prob": 1.5}, r"synth\.hat_prob"),
        ({"eyeglasses_prob": float("nan")}, r"synth\.eyeglasses_prob"),
        ({"splits": {"train": 0.8, "val": 0.1}}, r"synth\.splits: expected exactly the keys"),
        ({"splits": {"train": 0.8, "val": 0.1, "test": 0.2}}, r"synth\.splits: the fractions must sum to 1"),
        ({"scale_range": [1.2, 1.0]}, r"synth\.scale_range"),
        ({"skin_tone_groups": []}, r"synth\.skin_tone_groups"),
        (
            {"skin_tone_groups": [{"name": "a", "tone": [0.5, 0.2], "weight": 1}]},
            r"skin_tone_groups\['a'\]\.tone",
        ),
        (
            {"skin_tone_groups": [{"name": "a", "tone": [0, 1]}]},
            r"skin_tone_groups\[0\]: missing key 'weight'",
        ),
        (
            {"skin_tone_groups": [{"name": "a", "tone": [0, 1], "weight": 1, "shade": 2}]},
            r"skin_tone_groups\[0\]: unknown key 'shade'",
        ),
        (
            {"skin_tone_groups": [{"name": "a", "tone": [0, 1], "weight": -1}]},
            r"skin_tone_groups\['a'\]\.weight",
        ),
        (
            {"skin_tone_groups": [{"name": "a", "tone": [0, 1], "weight": 1, "hair_colours": {"green": 1}}]},
            r"hair_colours: unknown colour 'green'",
        ),
        (
            {
                "skin_tone_groups": [
                    {"name": "a", "tone": [0, 1], "weight": 1},
                    {"name": "a", "tone": [0, 1], "weight": 1},
                ]
            },
            r"the name 'a' is used twice",
        ),
        ({"num_identities": 10, "celeba_pool": 5}, r"synth\.celeba_pool"),
    ],
)
def test_bad_settings_name_the_key(settings: dict, message: str) -> None:
    with pytest.raises(SynthConfigError, match=message):
        SynthConfig.from_dict(settings)


def test_render_dataset_rejects_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="SynthConfig"):
        render_dataset({"seed": 0}, tmp_path / "x", progress=False)  # type: ignore[arg-type]
