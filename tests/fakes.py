"""A fast fake Embedder for unit tests of storage, ranking and API logic."""

from __future__ import annotations

import hashlib

import numpy as np


class HashEmbedder:
    """Hashes character bigrams into a fixed-size vector: similar strings, similar vectors."""

    def __init__(self, dim: int = 64, name: str = "hash-test") -> None:
        self.name = name
        self.dim = dim
        self.fingerprint = f"hash{dim}"
        self.numerics = "float"
        self.calls = 0

    def encode(self, texts: list[str], *, kind: str, progress: bool = False) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            low = text.lower()
            for a, b in zip(low, low[1:], strict=False):
                digest = hashlib.blake2b((a + b).encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
            out[row] /= max(float(np.linalg.norm(out[row])), 1e-9)
        return out
