"""Cross-language alignment learned from paired English/Chinese papers, one per encoder.

Centring each language on its mean (``index.calibration``) removes the offset between the
languages, not the difference in how each one is laid out. A small linear map fitted on
papers whose English and Chinese title + abstract we both have corrects part of the rest
(``bench/fit_alignment.py`` fits them; ``docs/ALIGNMENT.md`` has the data and the numbers):

- ``procrustes`` (multilingual-e5-small): an orthogonal map ``W`` taking centred Chinese
  vectors onto their English twins (``W = U V^T`` from the SVD of ``X_zh^T X_en``), applied
  to Chinese passages and Chinese queries alike; English vectors are untouched.
- ``project-out`` (mUSE): the top principal directions of the paired differences
  ``zh - en`` are removed from every vector, whatever its language.

Both act on centred vectors and are followed by re-normalisation and kb's per-language
z-scores. The fitted matrices ship in ``alignment_data/`` (named after the encoder, and only
used for the weights they were fitted on: the file records the encoder's fingerprint).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ALIGNMENT_DIR = Path(__file__).with_name("alignment_data")
KINDS = ("procrustes", "project-out")
ALIGNED_LANG = "zh"  # the language a Procrustes map moves (onto English)


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Alignment:
    """A fitted linear correction of one encoder's centred vectors.

    Attributes:
        kind: ``procrustes`` (``matrix`` is a dim x dim orthogonal map for Chinese rows,
            ``x @ matrix``) or ``project-out`` (``matrix`` holds k orthonormal directions,
            one per row, removed from every row).
        model_fingerprint: the fingerprint of the encoder weights it was fitted on.
    """

    kind: str
    matrix: np.ndarray
    model_fingerprint: str

    @property
    def fingerprint(self) -> str:
        """A short hash of the kind and the matrix: recorded in the index config, so a
        changed transform rebuilds the index from the stored vectors."""
        h = hashlib.sha256(self.kind.encode())
        h.update(np.ascontiguousarray(self.matrix, dtype=np.float32).tobytes())
        return f"{self.kind}:{h.hexdigest()[:16]}"

    def apply(self, vectors: np.ndarray, langs: list[str]) -> np.ndarray:
        """Centred vectors (one row per language in ``langs``) -> aligned, normalised rows."""
        x = np.asarray(vectors, dtype=np.float32)
        m = self.matrix.astype(np.float32)
        if self.kind == "project-out":
            return _normalize(x - (x @ m.T) @ m)
        rows = np.asarray([lang == ALIGNED_LANG for lang in langs], dtype=bool)
        if not rows.any():
            return x
        out = x.copy()
        out[rows] = _normalize(x[rows] @ m)
        return out

    def save(self, path: Path) -> None:
        """Write the alignment as an ``.npz`` file (float32 matrix, kind, fingerprint)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.savez_compressed(
                f,
                kind=np.asarray(self.kind),
                matrix=self.matrix.astype(np.float32),
                model_fingerprint=np.asarray(self.model_fingerprint),
            )

    @classmethod
    def read(cls, path: Path) -> Alignment:
        """The alignment saved in ``path``; ValueError when it is not one."""
        try:
            with np.load(path) as data:
                kind = str(data["kind"])
                matrix = np.asarray(data["matrix"], dtype=np.float32)
                model_fingerprint = str(data["model_fingerprint"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path} is not a kb alignment file ({e}).") from e
        if kind not in KINDS or matrix.ndim != 2:
            raise ValueError(f"{path} holds an unknown alignment ({kind!r}, {matrix.shape}).")
        return cls(kind, matrix, model_fingerprint)


def load_alignment(
    model_fingerprint: str, folder: Path | None = None, dim: int | None = None
) -> Alignment | None:
    """The alignment in ``folder`` (default: the shipped ``ALIGNMENT_DIR``) fitted on the
    encoder weights ``model_fingerprint``, or None (another model, or none was fitted).
    ``dim``: the encoder's, checked against the file."""
    for path in sorted((folder or ALIGNMENT_DIR).glob("*.npz")):
        alignment = Alignment.read(path)
        if alignment.model_fingerprint == model_fingerprint:
            if dim is not None and alignment.matrix.shape[1] != dim:
                raise ValueError(f"{path} is {alignment.matrix.shape[1]}-d, the encoder {dim}-d.")
            return alignment
    return None


def fit_procrustes(x_zh: np.ndarray, x_en: np.ndarray) -> np.ndarray:
    """The orthogonal ``W`` minimising ``||x_zh W - x_en||`` (rows are paired)."""
    u, _, vt = np.linalg.svd(x_zh.astype(np.float64).T @ x_en.astype(np.float64))
    return (u @ vt).astype(np.float32)


def fit_projection(x_zh: np.ndarray, x_en: np.ndarray, k: int = 8) -> np.ndarray:
    """The top ``k`` principal directions (rows, orthonormal) of the paired ``x_zh - x_en``.

    Taken from the differences' second moment, not their covariance: an offset the language
    means left between the two languages is a systematic difference to remove like the rest.
    """
    diff = x_zh.astype(np.float64) - x_en.astype(np.float64)
    _, _, vt = np.linalg.svd(diff, full_matrices=False)
    return vt[:k].astype(np.float32)
