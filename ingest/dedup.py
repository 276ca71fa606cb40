"""Recognise one work arriving as two files: shared identifiers, or nearly the same text.

Two signals, both pure:

- ``work_ids``: the DOI and arXiv id of a paper, normalised so that ``https://doi.org/10.1/X.``
  and ``10.1/x`` or ``arXiv:2301.01234v2`` and ``2301.01234`` compare equal.
- MinHash: ``text_signature`` estimates the Jaccard similarity of two texts' sets of character
  7-grams, taken after NFKC, case folding and removing every space and punctuation mark, so the
  same rule serves English and Chinese (no word splitting) and extraction noise (spacing, line
  breaks, hyphenation, full-width forms) does not count. A re-saved PDF or a v1/v2 with small
  edits scores well above ``DUPLICATE_THRESHOLD``, different papers on the same topic well
  below it (the measurements are next to the constant).

Signatures are plain ``uint64`` arrays built from fixed integer arithmetic (no Python ``hash``,
no random generator), so they are the same in every process and on every machine and can be
stored.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from ingest.metadata import find_doi
from kb.types import PaperMeta

# 7, not 5: in long English texts with spaces removed, 5-grams are little more than common
# word pieces ("ation", "secur"), so different documents share many of them. Measured on the
# material below, 5-grams let different papers reach 0.34 (7-grams: 0.28); 7-grams lose a little
# on one re-extracted diagram PDF (0.50 against 0.66) and nothing on edited texts.
SHINGLE_CHARS = 7
NUM_PERM = 128
# Measured 2026-11-28 with the code here (tests/test_ingest_dedup.py re-checks a sample):
# - the same work: the 22 shared PDFs' pypdf text against itself with 2 % / 5 % / 10 % of its
#   words (or Chinese character pairs) deleted, replaced or inserted: min 0.87 / 0.77 / 0.63;
#   the last 10 % cut off: min 0.81; a "v2" (2 % edits, end cut, a paragraph added): min 0.80;
#   the first five pages as ingest.pdf reads them and as pdfminer.six alone reads them: median
#   0.95, min 0.50 (a diagram-only PDF whose labels the two order differently).
# - different works: every pair of the 22 PDFs: max 0.19 (two CoSAI papers sharing their
#   boilerplate); each of the 3,493 xling title+abstracts against all others of its language:
#   max 0.28 in English (two papers by one group opening with the same sentences), 0.16 in
#   Chinese; 99th percentile 0.13 and 0.07.
# 0.45 sits in the gap; with 128 permutations one estimate's standard error is <= 0.044, so a
# pair at 0.28 crosses it less than once in 10,000 tries.
DUPLICATE_THRESHOLD = 0.45

_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)  # the signature value of a text with no shingles
_BLOCK = 8192  # shingles hashed at once: 128 x 8192 uint64 = 8 MiB
_NOT_WORD_RE = re.compile(r"[\W_]+")
_ARXIV_RE = re.compile(
    r"(?:^|arxiv[:.\s]\s*|arxiv\.org/(?:abs|pdf)/)"
    r"(\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[a-z]{2})?/\d{7})(?:v\d+)?(?:\.pdf)?$",
)


# ------------------------------------------------------------------ identifiers


def work_ids(meta: PaperMeta) -> set[str]:
    """The normalised identifiers of a paper: ``doi:10.x/...`` and ``arxiv:2301.01234``.

    A DOI is lower-cased (DOIs are case-insensitive) and loses any resolver prefix and trailing
    punctuation; an arXiv id loses its prefix and version. An arXiv DOI (10.48550/arXiv.X)
    also yields ``arxiv:X``, and a doi.org or arxiv.org ``url`` counts like the fields.
    """
    out: set[str] = set()
    for raw in (meta.doi, meta.url):
        doi = normalize_doi(raw or "")
        if doi:
            out.add(f"doi:{doi}")
            arxiv = normalize_arxiv(doi.removeprefix("10.48550/"))
            if doi.startswith("10.48550/") and arxiv:
                out.add(f"arxiv:{arxiv}")
    for raw in (meta.arxiv_id, meta.url):
        arxiv = normalize_arxiv(raw or "")
        if arxiv:
            out.add(f"arxiv:{arxiv}")
    return out


def normalize_doi(raw: str) -> str | None:
    """``https://doi.org/10.1000/ABC.`` -> ``10.1000/abc``; None when ``raw`` holds no DOI."""
    doi = find_doi(raw)
    return doi.lower() if doi else None


def normalize_arxiv(raw: str) -> str | None:
    """``arXiv:2301.01234v2`` or an arxiv.org link -> ``2301.01234``; None if not an arXiv id."""
    match = _ARXIV_RE.search(raw.strip().lower())
    return match.group(1) if match else None


# ------------------------------------------------------------------ MinHash


def normalize_text(text: str) -> str:
    """NFKC, case-folded, with every space, punctuation mark and underscore removed."""
    return _NOT_WORD_RE.sub("", unicodedata.normalize("NFKC", text).casefold())


def shingle_hashes(text: str, k: int = SHINGLE_CHARS) -> np.ndarray:
    """The distinct 64-bit hashes of the character ``k``-grams of ``normalize_text(text)``.

    A text shorter than ``k`` characters is one shingle; an empty one has none.
    """
    codes = np.frombuffer(normalize_text(text).encode("utf-32-le"), dtype=np.uint32)
    if len(codes) == 0:
        return np.zeros(0, dtype=np.uint64)
    codes = codes.astype(np.uint64)
    width = min(k, len(codes))
    n = len(codes) - width + 1
    h = np.zeros(n, dtype=np.uint64)
    for j in range(width):  # polynomial hash, wrapping mod 2**64, then mixed
        h = h * np.uint64(0x100000001B3) + codes[j : j + n]
    return np.unique(_mix64(h))


def text_signature(text: str, *, num_perm: int = NUM_PERM) -> np.ndarray:
    """The MinHash signature of ``text``: ``num_perm`` uint64 minima, one per hash function.

    Hash function ``i`` is a fixed 64-bit mixer of (shingle XOR seed ``i``), with seeds from a
    fixed counter, so signatures are identical across processes, runs and machines.
    """
    shingles = shingle_hashes(text)
    sig = np.full(num_perm, _EMPTY, dtype=np.uint64)
    seeds = _seeds(num_perm)[:, None]
    for start in range(0, len(shingles), _BLOCK):
        block = shingles[None, start : start + _BLOCK]
        np.minimum(sig, _mix64(block ^ seeds).min(axis=1), out=sig)
    return sig


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The estimated Jaccard similarity of two signatures' shingle sets (0 if either is empty)."""
    if len(a) != len(b):
        raise ValueError(f"Signatures of {len(a)} and {len(b)} values cannot be compared.")
    return float(np.mean((a == b) & (a != _EMPTY)))


def best_match(
    sig: np.ndarray, sigs: np.ndarray, *, threshold: float = DUPLICATE_THRESHOLD
) -> tuple[int, float] | None:
    """The row of ``sigs`` most similar to ``sig`` and its similarity, if >= ``threshold``.

    Args:
        sigs: stored signatures, one per row ([n, num_perm]); compared all at once.
        threshold: pass 0.0 for the best row whatever its similarity.
    """
    sigs = np.asarray(sigs, dtype=np.uint64).reshape(-1, len(sig))
    if len(sigs) == 0:
        return None
    scores = ((sigs == sig[None, :]) & (sig[None, :] != _EMPTY)).mean(axis=1)
    row = int(np.argmax(scores))
    score = float(scores[row])
    return (row, score) if score >= threshold else None


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a fixed bijection of uint64 that spreads every input bit."""
    z = x ^ (x >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _seeds(num_perm: int) -> np.ndarray:
    """``num_perm`` fixed seeds: SplitMix64 outputs of a counter (golden-ratio steps)."""
    counter = np.arange(1, num_perm + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return _mix64(counter)
