"""ingest.dedup: identifiers and MinHash signatures on real PDFs and real bilingual records."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.dedup import (
    DUPLICATE_THRESHOLD,
    best_match,
    normalize_text,
    similarity,
    text_signature,
    work_ids,
)
from kb.types import PaperMeta
from tests.conftest import PDFS, XLING

# Small real PDFs in both languages; the two CoSAI papers share a template (the closest pair of
# different documents measured among the shared PDFs).
SAMPLE_PDFS = [
    "en_garak_llm_vulnerability_scanner_paper",
    "en_cosai_signing_ml_artifacts",
    "en_cosai_preparing_defenders_of_ai_systems",
    "zh_caict_2022_data_security_risk_analysis",
    "zh_2022_beijing_autonomous_driving_data_classification",
]
_TOKEN_RE = re.compile(r"[\u3400-\u9fff]{1,2}|\S+")  # a word, or a pair of Chinese characters


@pytest.fixture(scope="module")
def pdf_texts() -> dict[str, str]:
    from ingest.pdf import read_pdf

    return {
        name: "\n".join(read_pdf(PDFS / f"{name}.pdf", first_pages=8).pages) for name in SAMPLE_PDFS
    }


@pytest.fixture(scope="module")
def dev_records() -> list[dict[str, str]]:
    lines = (XLING / "safety_pairs_dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _edit(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with about ``rate`` of its tokens deleted, replaced or followed by an insert."""
    tokens = _TOKEN_RE.findall(text)
    out: list[str] = []
    for token in tokens:
        roll = rng.random()
        if roll < rate / 3:
            continue
        out.append(rng.choice(tokens) if roll < 2 * rate / 3 else token)
        if 2 * rate / 3 <= roll < rate:
            out.append(rng.choice(tokens))
    return " ".join(out)


# ------------------------------------------------------------------ identifiers


def test_work_ids_normalise_doi_and_arxiv_forms():
    a = PaperMeta(title="A", doi="https://doi.org/10.1145/3576915.ABC.", arxiv_id="2301.01234v2")
    b = PaperMeta(title="B", doi="10.1145/3576915.abc", url="https://arxiv.org/abs/2301.01234")
    assert work_ids(a) == work_ids(b) == {"doi:10.1145/3576915.abc", "arxiv:2301.01234"}


def test_work_ids_arxiv_doi_url_and_old_style_ids():
    meta = PaperMeta(title="T", doi="doi:10.48550/arXiv.2306.05499", url="https://x.org/p")
    assert work_ids(meta) == {"doi:10.48550/arxiv.2306.05499", "arxiv:2306.05499"}
    assert work_ids(PaperMeta(title="T", arxiv_id="arXiv:hep-th/9901001v3")) == {
        "arxiv:hep-th/9901001"
    }
    pdf_url = PaperMeta(title="T", url="https://arxiv.org/pdf/2401.00001v1.pdf")
    assert work_ids(pdf_url) == {"arxiv:2401.00001"}


def test_work_ids_keep_balanced_parentheses_and_ignore_junk():
    meta = PaperMeta(title="T", doi="(see 10.1016/S0140-6736(20)30183-5).")
    assert work_ids(meta) == {"doi:10.1016/s0140-6736(20)30183-5"}
    assert work_ids(PaperMeta(title="T", doi="n/a", arxiv_id="", url="file.pdf")) == set()


# ------------------------------------------------------------------ signatures


def test_signature_is_uint64_and_the_same_in_another_process():
    text = "Prompt injection 提示注入攻击 against LLM-integrated applications."
    sig = text_signature(text)
    assert sig.dtype == np.uint64 and sig.shape == (128,)
    code = (
        "import sys; from ingest.dedup import text_signature; "
        "sys.stdout.write(text_signature(sys.argv[1]).tobytes().hex())"
    )
    root = Path(__file__).resolve().parents[1]
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    other = subprocess.run(
        [sys.executable, "-c", code, text], cwd=root, env=env, capture_output=True, check=True
    )
    assert other.stdout.decode() == sig.tobytes().hex()
    assert text_signature(text, num_perm=64).shape == (64,)


def test_extraction_noise_does_not_count():
    clean = "大型语言模型的安全对齐：挑战与方法。Large Language Models, aligned."
    noisy = "大 型 语 言 模 型 的 安 全 对 齐 ︰ 挑战与方法 。\nLARGE  lan-\nguage MODELS aligned"
    assert normalize_text(clean) == normalize_text(noisy)
    assert similarity(text_signature(clean), text_signature(noisy)) == 1.0


def test_empty_texts_match_nothing():
    empty, punct = text_signature(""), text_signature(" 。，!? ")
    assert similarity(empty, punct) == 0.0
    assert best_match(empty, np.stack([empty, punct]), threshold=0.0) == (0, 0.0)
    assert best_match(empty, np.stack([empty, punct])) is None
    assert best_match(empty, np.zeros((0, 128), dtype=np.uint64)) is None
    with pytest.raises(ValueError, match="cannot be compared"):
        similarity(empty, text_signature("", num_perm=64))


def test_edited_versions_of_real_pdfs_match(pdf_texts: dict[str, str]):
    rng = random.Random(7)
    names = list(pdf_texts)
    sigs = np.stack([text_signature(pdf_texts[name]) for name in names])
    for row, name in enumerate(names):
        text = pdf_texts[name]
        cut = int(len(text) * 0.9)
        versions = {
            "5% edited": _edit(text, 0.05, rng),
            "end cut": text[:cut],
            "v2": _edit(text[:cut], 0.02, rng) + "\n" + _edit(text[: len(text) // 20], 0.3, rng),
        }
        for what, version in versions.items():
            found = best_match(text_signature(version), sigs)
            assert found is not None and found[0] == row, (name, what, found)
            assert found[1] >= DUPLICATE_THRESHOLD + 0.15, (name, what, found)


def test_different_real_pdfs_stay_far_below(pdf_texts: dict[str, str]):
    sigs = {name: text_signature(text) for name, text in pdf_texts.items()}
    names = list(sigs)
    worst = max(similarity(sigs[a], sigs[b]) for i, a in enumerate(names) for b in names[i + 1 :])
    assert worst < DUPLICATE_THRESHOLD - 0.15


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_different_papers_on_one_topic_stay_far_below(dev_records: list[dict[str, str]], lang: str):
    sigs = np.stack([text_signature(f"{r[f'{lang}_title']}\n{r[lang]}") for r in dev_records])
    for row, sig in enumerate(sigs):
        others = np.delete(sigs, row, axis=0)
        found = best_match(sig, others, threshold=0.0)
        assert found is not None and found[1] < DUPLICATE_THRESHOLD - 0.1, dev_records[row]["id"]


def test_a_translation_is_not_a_duplicate(dev_records: list[dict[str, str]]):
    for record in dev_records[:50]:
        en = text_signature(f"{record['en_title']}\n{record['en']}")
        zh = text_signature(f"{record['zh_title']}\n{record['zh']}")
        assert similarity(en, zh) < 0.1
