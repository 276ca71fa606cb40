from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from ingest.lang import detect_lang, join_text, normalize_lang
from tests.conftest import XLING


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Large language models can be jailbroken by adversarial prompts.", "en"),
        ("大语言模型可能被对抗性提示词越狱。", "zh"),
        ("這是繁體中文的句子，用於測試語言檢測。", "zh"),
        ("Les grands modèles de langage peuvent être contournés par des requêtes.", "fr"),
        ("これは日本語の文章です。言語検出のテストです。", "ja"),
        ("이것은 한국어 문장입니다. 언어 감지 테스트입니다.", "ko"),
    ],
)
def test_detects_common_languages(text: str, expected: str) -> None:
    assert detect_lang(text) == expected


@pytest.mark.parametrize("text", ["", "   \n\t", "12345 67.8", "—— !!! ..."])
def test_text_without_letters_is_undetermined(text: str) -> None:
    assert detect_lang(text) == "und"


def test_chinese_with_english_terms_is_chinese() -> None:
    # Letters are mostly Latin here, but the Han characters carry the sentence.
    assert detect_lang("使用 GPT-4 和 Claude 进行 red teaming 评估") == "zh"
    assert detect_lang("大语言模型（LLM）的安全 alignment 研究进展") == "zh"


def test_english_with_a_chinese_name_is_english() -> None:
    text = "We thank 张三 for comments on the threat model and the evaluation of this paper."
    assert detect_lang(text) == "en"


def test_detection_is_deterministic_and_thread_safe() -> None:
    texts = ["Short text about safety.", "Model alignment and red teaming", "模型对齐"] * 20
    first = [detect_lang(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(detect_lang, texts)) == first


def test_real_bilingual_records() -> None:
    with (XLING / "safety_pairs_dev.jsonl").open(encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 493
    assert [detect_lang(r["en"]) for r in records[:50]] == ["en"] * 50
    assert [detect_lang(r["zh"]) for r in records[:50]] == ["zh"] * 50
    # Titles are short, where langdetect alone often says da/nl/de for English.
    english_titles = sum(detect_lang(r["en_title"]) == "en" for r in records)
    assert english_titles >= 485


@pytest.mark.parametrize(
    ("code", "expected"), [("zh-cn", "zh"), ("zh_TW", "zh"), ("EN", "en"), ("", "und")]
)
def test_normalize_lang(code: str, expected: str) -> None:
    assert normalize_lang(code) == expected


def test_join_text_spaces_latin_but_not_chinese() -> None:
    assert join_text("model", "safety") == "model safety"
    assert join_text("大语言", "模型") == "大语言模型"
    assert join_text("模型,", "安全") == "模型,安全"
    assert join_text("安全。", "LLM") == "安全。 LLM"
    assert join_text("state-of-", "the-art", gap=False) == "state-of-the-art"


def test_a_documents_language_decides_text_in_its_script(monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.lang

    asked: list[str] = []
    real = ingest.lang._detector

    def counting() -> object:
        asked.append("langdetect")
        return real()

    monkeypatch.setattr(ingest.lang, "_detector", counting)
    # A Latin chunk of an English paper (code, a table of names) takes the paper's language.
    assert (
        detect_lang("Kubernetes Pod Security Admission: baseline, restricted", prior="en") == "en"
    )
    assert detect_lang("Les grands modèles de langage peuvent être contournés.", prior="fr") == "fr"
    # Latin Extended Additional is Latin too (Vietnamese ệ, ữ, ớ).
    assert (
        detect_lang("Mô hình ngôn ngữ lớn bị bẻ khóa bởi lời nhắc đối kháng.", prior="vi") == "vi"
    )
    assert asked == []
    # Han text is Chinese whatever the paper; a Latin chunk of a Chinese paper is detected.
    assert detect_lang("大语言模型可能被对抗性提示词越狱。", prior="en") == "zh"
    text = "Large language models can be jailbroken by adversarial prompts."
    assert detect_lang(text, prior="zh") == "en"
    assert detect_lang("Большие языковые модели можно взломать.", prior="en") == "ru"
    assert asked == ["langdetect", "langdetect"]
