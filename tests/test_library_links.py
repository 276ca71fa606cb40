"""kb.library.links: a shared identifier links two papers only when their texts agree."""

from __future__ import annotations

import numpy as np

from index.linker import find_translations
from kb.library.links import trusted_ids

DIM = 16


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


class Means:
    """Each language's mean vector, removed as index.calibration.LanguageMeans.center does."""

    def __init__(self, passage: dict[str, np.ndarray]) -> None:
        self.passage = passage

    def center(self, vectors: np.ndarray, langs: list[str], kind: str) -> np.ndarray:
        shifted = vectors - np.stack([self.passage.get(lang, 0 * vectors[0]) for lang in langs])
        return shifted / np.linalg.norm(shifted, axis=1, keepdims=True)


def test_a_shared_identifier_is_trusted_only_when_the_texts_agree() -> None:
    rng = np.random.default_rng(0)
    offset = {"en": 2.0 * rng.normal(size=DIM), "zh": 2.0 * rng.normal(size=DIM)}
    # Each language's mean, as LanguageMeans takes it from a reference sample.
    sample = {k: [_unit(rng.normal(size=DIM) + v) for _ in range(500)] for k, v in offset.items()}
    means = Means({k: np.mean(v, axis=0) for k, v in sample.items()})
    paper, other = rng.normal(size=DIM), rng.normal(size=DIM)
    vectors = np.stack(
        [
            _unit(paper + offset["en"]),  # 0: an English paper
            _unit(paper + 0.2 * rng.normal(size=DIM) + offset["zh"]),  # 1: its translation
            _unit(other + offset["zh"]),  # 2: Chinese slides that cite paper 0
        ]
    )
    langs = ["en", "zh", "zh"]
    ids = [{"arxiv:2401.05566"}, {"arxiv:2401.05566"}, {"arxiv:2401.05566"}]
    kept = trusted_ids(ids, langs, [vectors], [means], [0.3])
    assert kept == [{"arxiv:2401.05566"}, {"arxiv:2401.05566"}, set()]
    links = find_translations([vectors], langs, kept)
    assert [(link.a, link.b, link.reason) for link in links] == [(0, 1, "identifier")]
    # Without the check, slides that carry the id of the paper they cite were linked to it.
    alone = vectors[[0, 2]]
    unchecked = find_translations([alone], ["en", "zh"], ids[:2])
    assert [(link.a, link.b) for link in unchecked] == [(0, 1)]
    checked = trusted_ids(ids[:2], ["en", "zh"], [alone], [means], [0.3])
    assert checked == [set(), set()]
    assert find_translations([alone], ["en", "zh"], checked) == []


def test_same_language_and_unknown_language_pairs_are_left_alone() -> None:
    rng = np.random.default_rng(1)
    means = Means({"en": np.zeros(DIM)})
    vectors = np.stack([_unit(rng.normal(size=DIM)) for _ in range(3)])
    ids = [{"doi:10.1/x"}] * 3
    kept = trusted_ids(ids, ["en", "en", "und"], [vectors], [means], [0.9])
    assert kept == [{"doi:10.1/x"}] * 3


def test_without_an_encoder_to_judge_identifiers_are_trusted() -> None:
    ids = [{"doi:10.1/x"}, {"doi:10.1/x"}]
    assert trusted_ids(ids, ["en", "zh"], [], [], []) == ids
