"""The main encoder's runtimes (KB_EMBED_BACKEND): exported once, same vectors, clear errors."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from index import backends
from index.embedder import SentenceTransformerEmbedder, load_embedder
from kb.errors import ConfigError, ModelError
from kb.settings import Settings

# Mixed lengths and both languages, so that length-sorted batches are put back in order.
TEXTS = [
    "Red teaming large language models with language models.",
    "大语言模型的对齐研究：人类反馈强化学习、宪法式人工智能与可扩展监督方法的综述。" * 3,
    "Jailbreak",
    "Universal and transferable adversarial attacks on aligned language models. " * 6,
    "越狱攻击",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_fp32_backends_give_torchs_vectors(
    real_embedder: SentenceTransformerEmbedder, e5_dir: Path, model_dir: Path, backend: str
) -> None:
    other = SentenceTransformerEmbedder(
        "multilingual-e5-small", str(e5_dir), backend=backend, model_dir=model_dir, batch_size=2
    )
    assert (other.dim, other.fingerprint) == (real_embedder.dim, real_embedder.fingerprint)
    assert other.numerics == real_embedder.numerics == "float"
    assert other.model is None  # the torch weights are let go
    for kind in ("query", "passage"):
        mine = other.encode(TEXTS, kind=kind)
        torch = real_embedder.encode(TEXTS, kind=kind)
        assert mine.dtype == np.float32 and mine.shape == torch.shape
        np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)
        assert float((mine * torch).sum(axis=1).min()) > 0.9999
    # Exported once: a second embedder reuses the files.
    folder = backends.folder(model_dir, real_embedder.fingerprint, backend)
    stamp = (folder / "kb_backend.json").stat().st_mtime_ns
    SentenceTransformerEmbedder("e5", str(e5_dir), backend=backend, model_dir=model_dir)
    assert (folder / "kb_backend.json").stat().st_mtime_ns == stamp


def test_int8_weights_stay_close_and_are_their_own_numerics(
    real_embedder: SentenceTransformerEmbedder, e5_dir: Path, model_dir: Path
) -> None:
    int8 = SentenceTransformerEmbedder(
        "multilingual-e5-small", str(e5_dir), backend="openvino-int8", model_dir=model_dir
    )
    assert int8.numerics == "openvino-int8"
    cosine = int8.encode(TEXTS, kind="passage") * real_embedder.encode(TEXTS, kind="passage")
    assert 0.99 < float(cosine.sum(axis=1).min()) < 1.0


def test_a_missing_runtime_says_how_to_install_it(
    e5_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ModelError, match=r"needs onnx, which is not installed: pip install"):
        SentenceTransformerEmbedder("e5", str(e5_dir), backend="onnx-int8", model_dir=tmp_path)
    assert not (tmp_path / "backends").exists()  # nothing exported
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(ModelError, match=r"openvino-int8 needs nncf.*pip install -e '.\[int8\]'"):
        SentenceTransformerEmbedder("e5", str(e5_dir), backend="openvino-int8", model_dir=tmp_path)


def test_backend_settings_are_checked(tmp_path: Path, e5_dir: Path) -> None:
    with pytest.raises(ConfigError, match="KB_EMBED_BACKEND must be one of torch, onnx"):
        Settings.from_env({"KB_DATA_DIR": str(tmp_path), "KB_EMBED_BACKEND": "tensorrt"})
    with pytest.raises(ModelError, match="runs on the CPU; KB_DEVICE=cuda needs"):
        SentenceTransformerEmbedder("e5", str(e5_dir), backend="openvino", device="cuda")
    settings = Settings(data_dir=tmp_path, model_dir=e5_dir.parent, embed_backend="torch")
    assert load_embedder(settings).backend == "torch"


def test_replaced_settings_keep_the_backend(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embed_backend="openvino")
    assert dataclasses.replace(settings, batch_size=8).embed_backend == "openvino"
