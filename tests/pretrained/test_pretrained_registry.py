"""The resolution rule, checksums, error text and random-init warnings of facectx.pretrained."""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from facectx import pretrained
from facectx.pretrained import ChecksumError, RandomWeightsWarning, WeightsNotFoundError, registry


def test_import_is_cheap():
    import subprocess
    import sys

    code = "import sys, facectx.pretrained; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_entries_registered():
    names = {e.name for e in pretrained.list_entries()}
    assert {
        "vggface-fc7",
        "arcface-r50",
        "arcface-r100",
        "dlib-resnet",
        "lpips-alex",
        "inception-fid",
        "fan-68",
    } <= names


def test_resolution_order(isolated, tiny_entry, tmp_path, monkeypatch, place):
    _, src, _ = tiny_entry
    hub = place(src, Path(torch.hub.get_dir()) / "checkpoints")
    assert pretrained.resolve("tiny-test") == hub

    env_dir = tmp_path / "env_weights"
    env_file = place(src, env_dir)
    monkeypatch.setenv("FACECTX_WEIGHTS", os.pathsep.join([str(tmp_path / "empty"), str(env_dir)]))
    assert pretrained.resolve("tiny-test") == env_file

    explicit = place(src, tmp_path / "explicit")
    assert pretrained.resolve("tiny-test", path=str(explicit)) == explicit

    # an explicit path that does not exist is an error, not a silent fallback
    with pytest.raises(WeightsNotFoundError, match="explicit path"):
        pretrained.resolve("tiny-test", path=str(tmp_path / "nope.pth"))


def test_package_file_is_last_local_place(isolated, tiny_entry, tmp_path, monkeypatch, place):
    entry, src, _ = tiny_entry
    pkg = tmp_path / "pkgroot" / "fake_weights_pkg"
    (pkg / "w").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    shipped = place(src, pkg / "w")
    monkeypatch.syspath_prepend(str(tmp_path / "pkgroot"))
    spec = replace(entry.files["weights"], package="fake_weights_pkg", package_path="w/tiny.pth")
    registry.register(replace(entry, files={"weights": spec}), replace=True)
    assert pretrained.resolve("tiny-test") == shipped
    hub = place(src, Path(torch.hub.get_dir()) / "checkpoints")
    assert pretrained.resolve("tiny-test") == hub


def test_real_package_files_found():
    for name, role in [
        ("lpips-alex", "head-v0.0"),
        ("lpips-alex", "head-v0.1"),
        ("dlib-resnet", "weights"),
    ]:
        path = pretrained.resolve(name, role, download=False)
        assert path.is_file()


def test_missing_error_names_file_url_and_places(isolated, tiny_entry):
    with pytest.raises(WeightsNotFoundError) as err:
        pretrained.load("tiny-test")
    text = str(err.value)
    assert "tiny.pth" in text
    assert "https://example.invalid/tiny.pth" in text
    assert str(Path(torch.hub.get_dir()) / "checkpoints" / "tiny.pth") in text
    assert "FACECTX_WEIGHTS" in text
    assert "disabled by FACECTX_OFFLINE" in text


def test_vggface_error_mentions_source(isolated):
    with pytest.raises(WeightsNotFoundError) as err:
        pretrained.load("vggface-fc7")
    text = str(err.value)
    assert "vgg_face_dag.pth" in text and "albanie" in text


def test_offline_env_skips_network_probe(isolated, tiny_entry, monkeypatch):
    def boom(url, timeout=0):
        raise AssertionError("probed the network while offline")

    monkeypatch.setattr(registry, "_reachable", boom)
    for var in ("FACECTX_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv("FACECTX_OFFLINE", raising=False)
        monkeypatch.setenv(var, "1")
        with pytest.raises(WeightsNotFoundError):
            pretrained.resolve("tiny-test")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(WeightsNotFoundError, match="download=False"):
        pretrained.resolve("tiny-test", download=False)


def test_unreachable_host_fails_fast(isolated, tiny_entry, monkeypatch):
    monkeypatch.delenv("FACECTX_OFFLINE")
    monkeypatch.setattr(registry, "_reachable", lambda url, timeout=0: False)
    with pytest.raises(WeightsNotFoundError, match="unreachable"):
        pretrained.resolve("tiny-test")


def test_download_goes_to_hub_cache_and_is_verified(isolated, tiny_entry, monkeypatch):
    _, src, _ = tiny_entry
    monkeypatch.delenv("FACECTX_OFFLINE")
    monkeypatch.setattr(registry, "_reachable", lambda url, timeout=0: True)
    payload = {"bytes": src.read_bytes()}

    def fake_download(url, dst, hash_prefix=None, progress=True):
        Path(dst).write_bytes(payload["bytes"])

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    got = pretrained.resolve("tiny-test")
    assert got == Path(torch.hub.get_dir()) / "checkpoints" / "tiny.pth"

    got.unlink()
    payload["bytes"] = b"corrupt" + payload["bytes"][7:]
    with pytest.raises(ChecksumError):
        pretrained.resolve("tiny-test")
    assert not got.exists(), "a download failing its checksum must be deleted"


def test_failed_download_is_not_found(isolated, tiny_entry, monkeypatch):
    monkeypatch.delenv("FACECTX_OFFLINE")
    monkeypatch.setattr(registry, "_reachable", lambda url, timeout=0: True)

    def broken(url, dst, hash_prefix=None, progress=True):
        raise OSError("connection reset")

    monkeypatch.setattr(torch.hub, "download_url_to_file", broken)
    with pytest.raises(WeightsNotFoundError, match="failed: connection reset"):
        pretrained.resolve("tiny-test")
    with pytest.warns(RandomWeightsWarning):
        pretrained.load("tiny-test", allow_random_init=True)


def test_tampered_file_fails_checksum(isolated, tiny_entry, tmp_path, place):
    _, src, state = tiny_entry
    good = place(src, tmp_path / "good")
    net = pretrained.load("tiny-test", path=str(good))
    assert torch.equal(net.lin.weight, state["lin.weight"])

    bad = place(src, tmp_path / "bad")
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="sha256"):
        pretrained.load("tiny-test", path=str(bad))
    with pytest.raises(ChecksumError):  # random init is no excuse for a corrupt file
        pretrained.load("tiny-test", path=str(bad), allow_random_init=True)

    short = place(src, tmp_path / "short")
    short.write_bytes(src.read_bytes()[:-1])
    with pytest.raises(ChecksumError, match="size"):
        pretrained.resolve("tiny-test", path=str(short))


def test_digest_cache_tracks_mtime(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"one")
    first = registry.sha256sum(f)
    assert registry.sha256sum(f) == first
    f.write_bytes(b"two")
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert registry.sha256sum(f) != first


def test_random_init_is_explicit_and_warns_every_time(isolated, tiny_entry, caplog):
    with pytest.raises(WeightsNotFoundError):
        pretrained.load("tiny-test")
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="facectx.pretrained.registry"):
            with pytest.warns(RandomWeightsWarning, match="tiny-test uses RANDOM weights"):
                pretrained.load("tiny-test", allow_random_init=True)
        assert any("RANDOM weights" in r.getMessage() for r in caplog.records)


def test_force_random_init_ignores_present_file(isolated, tiny_entry, tmp_path, place):
    _, src, state = tiny_entry
    good = place(src, tmp_path / "good")
    with pytest.warns(RandomWeightsWarning):
        net = pretrained.load("tiny-test", path=str(good), force_random_init=True)
    assert not torch.equal(net.lin.weight, state["lin.weight"])


def test_loaded_module_is_frozen(isolated, tiny_entry, tmp_path, place):
    _, src, _ = tiny_entry
    net = pretrained.load("tiny-test", path=str(place(src, tmp_path / "w")))
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())


def test_lpips_partial_random_init_warns(isolated):
    """Heads ship with lpips; the AlexNet trunk is missing here, so this is a random build."""
    with pytest.warns(RandomWeightsWarning, match="backbone"):
        net = pretrained.load("lpips-alex", allow_random_init=True, version="0.1")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert net(x, x.flip(0)).shape == (2,)
    net.train()
    assert not net.training, "pretrained networks must stay in eval mode"


def test_dlib_resnet_entry():
    if importlib.util.find_spec("facectx.pretrained.dlib_resnet") is None:
        pytest.skip("facectx.pretrained.dlib_resnet (the other engineer's port) not there yet")
    net = pretrained.load("dlib-resnet")
    assert net.feature_dim == 128
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert out.shape == (1, 128)
