"""The main encoder's runtimes (KB_EMBED_BACKEND): exported once, same vectors, clear errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index import backends
from index.embedder import (
    ExportedEmbedder,
    SentenceTransformerEmbedder,
    load_embedder,
    load_exported,
)
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


def _load(e5_dir: Path, model_dir: Path, backend: str, **kw: object) -> ExportedEmbedder:
    return load_exported("multilingual-e5-small", str(e5_dir), backend=backend,
                         model_dir=model_dir, **kw)  # fmt: skip


@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_fp32_backends_give_torchs_vectors(
    real_embedder: SentenceTransformerEmbedder,
    e5_dir: Path,
    model_dir: Path,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = _load(e5_dir, model_dir, backend, batch_size=2)
    assert (other.dim, other.fingerprint) == (real_embedder.dim, real_embedder.fingerprint)
    assert other.numerics == real_embedder.numerics == "float"
    assert not hasattr(other, "model")  # the torch weights are let go
    for kind in ("query", "passage"):
        mine = other.encode(TEXTS, kind=kind)
        torch = real_embedder.encode(TEXTS, kind=kind)
        assert mine.dtype == np.float32 and mine.shape == torch.shape
        np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)
        assert float((mine * torch).sum(axis=1).min()) > 0.9999
    # Exported once; a second load finds the export by the model's files, without torch.
    folder = backends.folder(model_dir, real_embedder.fingerprint, backend)
    stamp = (folder / "kb_backend.json").stat().st_mtime_ns
    monkeypatch.setattr("index.embedder._load_sentence_transformer", _no_torch_load)
    again = _load(e5_dir, model_dir, backend, batch_size=2)  # the same batches: equal bits
    assert (folder / "kb_backend.json").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(
        again.encode(TEXTS, kind="query"), other.encode(TEXTS, kind="query")
    )


def _no_torch_load(*args: object) -> None:
    raise AssertionError("the model was loaded in torch")


def test_the_exported_tokenizer_gives_transformers_ids(
    real_embedder: SentenceTransformerEmbedder, e5_dir: Path, model_dir: Path
) -> None:
    text = _load(e5_dir, model_dir, "openvino").export.text
    texts = [*TEXTS, "ＡＢＣ　全角“引号”，句号。", "e\u0301 café \u200b", "long text " * 700, ""]
    hf = real_embedder.model.tokenizer(texts, truncation=True, max_length=512)["input_ids"]
    assert [e.ids for e in text.tokenizer.encode_batch(texts)] == hf
    assert max(map(len, hf)) == 512 and text.pad_id == real_embedder.model.tokenizer.pad_token_id


def test_a_search_process_loads_the_export_without_torch(
    real_embedder: SentenceTransformerEmbedder, e5_dir: Path, model_dir: Path
) -> None:
    _load(e5_dir, model_dir, "openvino")  # exported (once per test run)
    code = (
        "import sys; from pathlib import Path; from index.embedder import load_exported; "
        f"e = load_exported('e5', {str(e5_dir)!r}, backend='openvino', "
        f"model_dir=Path({str(model_dir)!r})); "
        "v = e.encode(['越狱攻击'], kind='query'); "
        "print(e.fingerprint, v.shape[1], 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [real_embedder.fingerprint, "384", "False", "False"]


def test_changed_model_files_are_checked_again_not_exported_again(
    real_embedder: SentenceTransformerEmbedder, e5_dir: Path, tmp_path: Path, model_dir: Path
) -> None:
    copy = tmp_path / "e5-copy"
    shutil.copytree(e5_dir, copy)  # new modification times: not known to the export
    folder = _load(e5_dir, model_dir, "openvino").export.folder
    record = json.loads((folder / "kb_backend.json").read_text())
    again = _load(copy, model_dir, "openvino")  # loaded in torch, fingerprinted, same export
    assert again.export.folder == folder and again.fingerprint == real_embedder.fingerprint
    sources = json.loads((folder / "kb_backend.json").read_text())["sources"]
    assert sources[:-1] == record["sources"] and len(sources) == len(record["sources"]) + 1
    assert backends.find(model_dir, "openvino", backends.source_key(copy) or "") == folder


def test_a_damaged_export_says_what_to_do(e5_dir: Path, model_dir: Path, tmp_path: Path) -> None:
    folder = _load(e5_dir, model_dir, "openvino").export.folder
    copy = tmp_path / "backends" / folder.name
    shutil.copytree(folder, copy)
    (copy / "tokenizer.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match=r"Cannot load the embedding export in .*Delete that"):
        _load(e5_dir, tmp_path, "openvino")


def test_an_older_export_format_is_replaced(
    e5_dir: Path, tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    current = backends.folder(tmp_path, real_embedder.fingerprint, "openvino")
    older = current.with_name(current.name.rsplit("-v", 1)[0] + "-v1")
    older.mkdir(parents=True)
    (older / "model.bin").write_bytes(b"old")
    int8 = current.with_name(current.name.replace("openvino", "openvino-int8"))
    int8.mkdir()
    _load(e5_dir, tmp_path, "openvino")
    assert current.is_dir() and not older.exists() and int8.is_dir()


def test_int8_weights_stay_close_and_are_their_own_numerics(
    real_embedder: SentenceTransformerEmbedder, e5_dir: Path, model_dir: Path
) -> None:
    int8 = _load(e5_dir, model_dir, "openvino-int8")
    assert int8.numerics == "openvino-int8"
    cosine = int8.encode(TEXTS, kind="passage") * real_embedder.encode(TEXTS, kind="passage")
    assert 0.99 < float(cosine.sum(axis=1).min()) < 1.0


def test_a_missing_runtime_says_how_to_install_it(
    e5_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ModelError, match=r"needs onnx, which is not installed: pip install"):
        _load(e5_dir, tmp_path, "onnx-int8")
    assert not (tmp_path / "backends").exists()  # nothing exported
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(ModelError, match=r"openvino-int8 needs nncf.*pip install -e '.\[int8\]'"):
        _load(e5_dir, tmp_path, "openvino-int8")


def test_backend_settings_are_checked(tmp_path: Path, e5_dir: Path) -> None:
    with pytest.raises(ConfigError, match="KB_EMBED_BACKEND must be one of torch, onnx"):
        Settings.from_env({"KB_DATA_DIR": str(tmp_path), "KB_EMBED_BACKEND": "tensorrt"})
    cuda = Settings(
        data_dir=tmp_path, model_dir=e5_dir.parent, device="cuda", embed_backend="openvino-int8"
    )
    with pytest.raises(ModelError, match="openvino-int8 runs on the CPU only.*KB_DEVICE=cpu"):
        load_embedder(cuda)
    settings = Settings(data_dir=tmp_path, model_dir=e5_dir.parent, embed_backend="torch")
    assert load_embedder(settings).backend == "torch"


def test_replaced_settings_keep_the_backend(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embed_backend="openvino")
    assert dataclasses.replace(settings, batch_size=8).embed_backend == "openvino"


def test_a_missing_gpu_is_one_line(tmp_path: Path, e5_dir: Path) -> None:
    with pytest.raises(ConfigError, match="KB_DEVICE must be cpu, cuda or cuda:N, not 'gpu'"):
        Settings.from_env({"KB_DATA_DIR": str(tmp_path), "KB_DEVICE": "gpu"})
    import torch

    if torch.cuda.is_available():  # pragma: no cover - CI has no GPU
        pytest.skip("a GPU is present: the error cannot happen")
    settings = Settings(data_dir=tmp_path, model_dir=e5_dir.parent, device="cuda")
    with pytest.raises(ModelError, match=r"^KB_DEVICE=cuda, but torch sees no CUDA GPU") as e:
        load_embedder(settings)
    assert "\n" not in str(e.value) and "KB_DEVICE=cpu" in str(e.value)
