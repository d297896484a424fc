import pytest
import torch

from fp_recognition.backbones import BACKBONES, PUBLISHED_PARAMETER_COUNTS, build_backbone, count_parameters


def _count_on_meta(name: str, **kwargs) -> int:
    with torch.device("meta"):  # no memory, no initialisation cost
        return count_parameters(build_backbone(name, **kwargs))


def test_published_counts_stated():
    with torch.device("meta"):
        assert count_parameters(build_backbone("iresnet50")) == 43_590_848
        assert count_parameters(build_backbone("ir101")) == 65_150_912


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_has_its_count(name):
    assert _count_on_meta(name) == PUBLISHED_PARAMETER_COUNTS[name]


def test_derived_counts():
    expected = {
        "iresnet18": 24_025_600,
        "iresnet34": 34_139_328,
        "iresnet100": 65_156_160,
        "ir18": 24_020_352,
        "ir34": 34_134_080,
        "ir50": 43_585_600,
    }
    for name, n in expected.items():
        assert _count_on_meta(name) == n


def test_count_scales_with_input_and_embedding():
    # only the Linear layer depends on them: 512 * s * s * E + E
    base = _count_on_meta("iresnet18")
    small = _count_on_meta("iresnet18", input_size=32, embedding_size=128)
    linear_112 = 512 * 49 * 512 + 512 + 2 * 512  # fc + features BN
    linear_32 = 512 * 4 * 128 + 128 + 2 * 128
    assert base - linear_112 == small - linear_32


@pytest.mark.parametrize("name", ["iresnet18", "ir18"])
def test_forward_shape_small_input(name):
    torch.manual_seed(0)
    model = build_backbone(name, input_size=32, embedding_size=16).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, 32, 32))
    assert out.shape == (3, 16)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out.norm(dim=1), torch.ones(3))  # not normalised


@pytest.mark.parametrize("name", ["iresnet18", "ir18"])
def test_width_scales_every_stage(name):
    model = build_backbone(name, input_size=32, embedding_size=16, width=8).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].out_channels == 8 and max(c.out_channels for c in convs) == 64
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 16)
    with pytest.raises(ValueError, match="width"):
        build_backbone(name, input_size=32, width=0)


def test_structure_details():
    iresnet = build_backbone("iresnet18", input_size=32)
    assert not iresnet.features.weight.requires_grad
    assert iresnet.layer1[0].downsample is not None  # every stage downsamples, the first included
    assert iresnet.dropout.p == 0.0
    ir = build_backbone("ir18", input_size=32)
    assert isinstance(ir.body[0].shortcut_layer, torch.nn.MaxPool2d)  # 64 -> 64: no conv shortcut
    assert isinstance(ir.body[2].shortcut_layer, torch.nn.Sequential)  # 64 -> 128
    assert not ir.output_layer[-1].affine
    assert ir.output_layer[1].p == 0.4
    assert build_backbone("ir18", input_size=32, dropout=0.1).output_layer[1].p == 0.1


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet50")
    with pytest.raises(ValueError, match="multiple of 16"):
        build_backbone("iresnet18", input_size=100)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["iresnet50", "ir101"])
def test_full_size_forward(name):
    model = build_backbone(name).eval()
    assert count_parameters(model) == PUBLISHED_PARAMETER_COUNTS[name]
    with torch.no_grad():
        assert model(torch.rand(1, 3, 112, 112)).shape == (1, 512)
