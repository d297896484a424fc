"""The StyleGAN2 generator: shapes, NVIDIA's names and sizes, the resampling against a slow reference,
safe loading, the refused pickle, and the q-space."""

from __future__ import annotations

import builtins
import collections
import math
import pickle
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fp_qdgs.faces.qspace import QSpaceGenerator, q_to_w, w_statistics, w_to_q
from fp_qdgs.faces.stylegan2 import StyleGAN2Config, StyleGAN2Generator, fir_filter, upfirdn
from fp_qdgs.faces.stylegan2_io import (
    UntrustedPickleError,
    convert_network_pickle,
    load_stylegan2,
    save_stylegan2,
)
from fp_qdgs.protocols import Generator

TINY = StyleGAN2Config(z_dim=32, w_dim=32, resolution=16, channel_base=512, channel_max=32, mapping_layers=2)


def _tiny(seed: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    g = StyleGAN2Generator(TINY).eval()
    with torch.no_grad():  # non-zero noise strengths and biases so the round trips test every tensor
        for name, p in g.named_parameters():
            if name.endswith(("noise_strength", ".bias")):
                p.add_(0.1 * torch.randn_like(p))
        g.mapping.w_avg.normal_()
    return g


def test_tiny_shapes() -> None:
    g = _tiny()
    assert TINY.num_ws == g.num_ws == 6
    z = torch.randn(3, 32)
    ws = g.mapping(z)
    assert ws.shape == (3, 6, 32)
    assert torch.equal(ws[:, 0], ws[:, 5])  # broadcast
    img = g.synthesis(ws)
    assert img.shape == (3, 3, 16, 16) and torch.isfinite(img).all()
    torch.testing.assert_close(g(z), img)
    torch.testing.assert_close(g.synthesis(ws[:1]), img[:1], atol=1e-5, rtol=1e-5)  # per-sample independent


def test_ffhq256_config_on_meta() -> None:
    config = StyleGAN2Config()
    with torch.device("meta"):
        g = StyleGAN2Generator(config)
    assert g.num_ws == 14
    assert [config.channels(r) for r in config.block_resolutions] == [512, 512, 512, 512, 256, 128, 64]
    assert sum(p.numel() for p in g.parameters()) == 24_767_458  # measured; ~24.8 M
    assert sum(p.numel() for p in g.mapping.parameters()) == 8 * (512 * 512 + 512)
    names = set(g.state_dict())
    for name in (
        "mapping.fc0.weight",
        "mapping.fc7.bias",
        "mapping.w_avg",
        "synthesis.b4.const",
        "synthesis.b4.resample_filter",
        "synthesis.b4.conv1.affine.weight",
        "synthesis.b4.conv1.noise_const",
        "synthesis.b8.conv0.weight",
        "synthesis.b8.conv0.noise_strength",
        "synthesis.b8.conv0.resample_filter",
        "synthesis.b256.torgb.affine.bias",
        "synthesis.b256.torgb.weight",
    ):
        assert name in names, name
    assert "synthesis.b4.conv0.weight" not in names and "synthesis.b8.const" not in names
    assert g.state_dict()["synthesis.b64.conv0.weight"].shape == (256, 512, 3, 3)


def test_filter_and_upsample_keep_constants() -> None:
    f = fir_filter()
    torch.testing.assert_close(
        f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64
    )
    up = upfirdn(torch.ones(1, 2, 6, 6), f, up=2, pad=(2, 1), gain=4.0)
    assert up.shape == (1, 2, 12, 12)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.ones(1, 2, 8, 8))


def _reference_layer(layer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The reference's generic path: fused modulated weights; for ``up = 2`` zero-insert, pad (3, 2), FIR x 4,
    then a valid convolution with the flipped weight (``flip_weight=False``)."""
    styles = layer.affine(w)
    wt = layer.weight.unsqueeze(0) * styles[:, None, :, None, None]
    wt = wt * (wt.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    out = []
    for i in range(len(x)):
        xi = x[i : i + 1]
        if layer.up == 2:
            xi = upfirdn(xi, layer.resample_filter, up=2, pad=(3, 2), gain=4.0)
            out.append(F.conv2d(xi, wt[i].flip([2, 3])))
        else:
            out.append(F.conv2d(xi, wt[i], padding=1))
    y = torch.cat(out) + layer.noise_const * layer.noise_strength
    return F.leaky_relu(y + layer.bias[None, :, None, None], 0.2) * math.sqrt(2)


def test_synthesis_layers_match_slow_reference() -> None:
    g = _tiny()
    w = torch.randn(2, 32)
    with torch.no_grad():
        conv0 = g.synthesis.b16.conv0
        x = torch.randn(2, 32, 8, 8)
        torch.testing.assert_close(conv0(x, w), _reference_layer(conv0, x, w), atol=1e-5, rtol=1e-5)
        conv1 = g.synthesis.b16.conv1
        x = torch.randn(2, 32, 16, 16)
        torch.testing.assert_close(conv1(x, w), _reference_layer(conv1, x, w), atol=1e-5, rtol=1e-5)


def test_safetensors_and_pt_round_trip(tmp_path) -> None:
    g = _tiny()
    z = torch.randn(2, 32)
    path = save_stylegan2(g, tmp_path / "g.safetensors")
    loaded = load_stylegan2(path, config=TINY)
    for name, tensor in g.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    with torch.no_grad():
        torch.testing.assert_close(loaded(z), g(z), rtol=0, atol=0)
    torch.save(g.state_dict(), tmp_path / "g.pt")
    assert torch.equal(load_stylegan2(tmp_path / "g.pt", config=TINY).mapping.w_avg, g.mapping.w_avg)
    state = dict(g.state_dict())
    del state["synthesis.b8.conv0.noise_const"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="missing.pt does not match"):
        load_stylegan2(tmp_path / "missing.pt", config=TINY)
    with pytest.raises(ValueError, match="does not match"):
        load_stylegan2(
            path,
            config=StyleGAN2Config(
                z_dim=32, w_dim=32, resolution=8, channel_base=256, channel_max=32, mapping_layers=2
            ),
        )
    (tmp_path / "g.pkl").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported weight file"):
        load_stylegan2(tmp_path / "g.pkl", config=TINY)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def test_untrusted_pickle_is_refused_and_never_unpickled(tmp_path) -> None:
    marker = tmp_path / "marker.txt"
    pkl = tmp_path / "net.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": _Evil(str(marker))}))
    with pytest.raises(UntrustedPickleError, match="trust_pickle=True"):
        convert_network_pickle(pkl, tmp_path / "out.safetensors")
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()
    # even when trusted, the restricted unpickler refuses a global outside its allow list
    with pytest.raises(pickle.UnpicklingError, match="builtins.exec"):
        convert_network_pickle(pkl, tmp_path / "out.safetensors", trust_pickle=True)
    assert not marker.exists()
    with pytest.raises(ValueError, match="unsupported weight file"):
        load_stylegan2(pkl, config=TINY)
    assert not marker.exists()


def _fake_reconstruct(meta):  # stands in for torch_utils.persistence._reconstruct_persistent_obj at dump time
    raise AssertionError("never called: the converter substitutes its own stub")


class _FakePersistent:
    """Pickles like a ``torch_utils.persistence`` object: ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, module: torch.nn.Module, marker: str) -> None:
        self.meta = {
            "type": "class",
            "version": 6,
            "module_src": f"open({marker!r}, 'w').write('exec ran')",
            "class_name": f"training.networks.{type(module).__name__}",
            "state": {
                "_parameters": collections.OrderedDict(module._parameters),
                "_buffers": collections.OrderedDict(module._buffers),
                "_non_persistent_buffers_set": set(),
                "_modules": collections.OrderedDict(
                    (k, _FakePersistent(v, marker)) for k, v in module._modules.items()
                ),
                "training": False,
                "weight_gain": np.float64(0.125),
            },
        }

    def __reduce__(self):
        return _fake_reconstruct, (self.meta,)


def test_trusted_conversion_of_a_persistence_pickle(tmp_path, monkeypatch) -> None:
    package = types.ModuleType("torch_utils")
    persistence = types.ModuleType("torch_utils.persistence")
    _fake_reconstruct.__module__ = "torch_utils.persistence"
    _fake_reconstruct.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _fake_reconstruct
    monkeypatch.setitem(sys.modules, "torch_utils", package)
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    g = _tiny(1)
    marker = tmp_path / "marker.txt"
    data = {"G": None, "G_ema": _FakePersistent(g, str(marker)), "training_set_kwargs": {"resolution": 16}}
    (tmp_path / "net.pkl").write_bytes(pickle.dumps(data, protocol=4))
    out = convert_network_pickle(tmp_path / "net.pkl", tmp_path / "g.safetensors", trust_pickle=True)
    assert not marker.exists()  # the embedded module source never ran
    loaded = load_stylegan2(out, config=TINY)
    z = torch.randn(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z), g(z), rtol=0, atol=0)


def test_w_statistics_and_q_round_trip() -> None:
    g = _tiny()
    avg, std = w_statistics(g, n=300, seed=4, truncation=1.0, batch_size=128)
    assert avg.shape == std.shape == (6, 32)
    torch.testing.assert_close(avg[0].expand(6, 32), avg)  # one w broadcast to every layer
    avg7, std7 = w_statistics(g, n=300, seed=4, truncation=0.7, batch_size=300)
    torch.testing.assert_close(std7, 0.7 * std, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(avg7, g.mapping.w_avg.lerp(avg, 0.7), atol=1e-5, rtol=1e-4)
    q = torch.randn(5, 6, 32)
    w = q_to_w(q, avg7, std7)
    torch.testing.assert_close(w_to_q(w, avg7, std7), q, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(q_to_w(torch.zeros(1, 6, 32), avg7, std7)[0], avg7)
    with pytest.raises(ValueError, match="must end in"):
        q_to_w(torch.randn(2, 5, 32), avg7, std7)


def test_q_space_generator_is_a_qdgs_generator() -> None:
    g = _tiny()
    avg, std = w_statistics(g, n=200, seed=0)
    gen = QSpaceGenerator(g, avg, std)
    assert isinstance(gen, Generator) and gen.latent_dim == 6 * 32
    q = gen.sample_prior(3, generator=torch.Generator().manual_seed(0))
    assert q.shape == (3, 192)
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ((g(z, truncation_psi=0.7) + 1) / 2).clamp(0, 1)
        torch.testing.assert_close(gen(q), expected, atol=1e-4, rtol=1e-4)
    q.requires_grad_(True)
    gen(q).sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
