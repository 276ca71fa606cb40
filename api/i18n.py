"""The web page's two languages: one message catalogue per language and how one is picked.

The page speaks the language of the ``kb_lang`` cookie (set by the toggle), else the best of
``Accept-Language`` (``zh*`` gives Chinese), else English. Every visible string of the
templates and of ``kb.js`` is here; error details from the library stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable

LANG_COOKIE = "kb_lang"
UI_LANGS = ("en", "zh")

EN: dict[str, str] = {
    "app.tagline": "Bilingual search over AI-safety papers",
    "nav.search": "Search",
    "nav.upload": "Upload",
    "nav.api": "API docs",
    "nav.switch": "中文",
    "nav.switch_title": "Switch the interface to Chinese",
    "search.placeholder": "Search papers in English or Chinese, or paste an abstract",
    "search.button": "Search",
    "search.lang": "Language",
    "search.lang_all": "All",
    "search.lang_en": "English",
    "search.lang_zh": "中文",
    "search.years": "Years",
    "search.year_from": "from",
    "search.year_to": "to",
    "search.results": "{n} papers for “{q}” ({ms} ms)",
    "search.results_one": "1 paper for “{q}” ({ms} ms)",
    "search.no_results": "No paper matches “{q}” with these filters.",
    "search.no_results_hint": "Try fewer words, another language, or a wider year range.",
    "search.try": "Try:",
    "search.recent": "Recently added",
    "search.library": "{papers} papers, {chunks} passages",
    "search.empty_library": "The library is empty. Upload PDFs to start.",
    "card.page": "p. {n}",
    "card.open_pdf": "Open PDF at page {n}",
    "card.open_pdf_short": "PDF",
    "card.translations": "Translations:",
    "card.related": "Related work",
    "card.related_loading": "Loading…",
    "card.related_fallback": "See related work on the paper's page",
    "card.no_authors": "Unknown authors",
    "card.no_year": "n.d.",
    "lang.en": "EN",
    "lang.zh": "中文",
    "lang.other": "Other",
    "paper.authors": "Authors",
    "paper.year": "Year",
    "paper.language": "Language",
    "paper.source": "Source",
    "paper.added": "Added",
    "paper.pages": "Pages",
    "paper.tags": "Tags",
    "paper.abstract": "Abstract",
    "paper.no_abstract": "No abstract was found for this paper.",
    "paper.files": "Files",
    "paper.no_files": "No PDF is kept for this paper (it came from a record).",
    "paper.open_pdf": "Open PDF",
    "paper.needs_ocr": "Pages with no usable text (OCR needed): {pages}",
    "paper.translations": "Translations",
    "paper.no_translations": "No translation of this paper is in the library.",
    "paper.related": "Related papers",
    "paper.related_en": "English",
    "paper.related_zh": "中文",
    "paper.related_other": "Other languages",
    "paper.related_none": "None yet.",
    "paper.translation_badge": "translation",
    "paper.collections": "Collections and notes",
    "paper.no_collections": "This paper is in no collection yet.",
    "paper.no_note": "(no note)",
    "paper.back": "Back to search",
    "upload.title": "Upload PDFs",
    "upload.intro": "Drop PDFs here to add them to the library (up to {mb} MB each). "
    "Each file is read, split into passages and indexed in the background.",
    "upload.readonly": "This kb is read-only: the server has no API keys (KB_API_KEYS).",
    "upload.key": "API key",
    "upload.key_hint": "Needed to upload; kept in this browser only.",
    "upload.key_save": "Remember",
    "upload.key_forget": "Forget",
    "upload.drop": "Drag PDFs here",
    "upload.or": "or",
    "upload.choose": "Choose files",
    "upload.queued": "Waiting",
    "upload.uploading": "Uploading {pct}%",
    "upload.processing": "Processing…",
    "upload.status_ingested": "Ingested",
    "upload.status_updated": "Updated",
    "upload.status_duplicate": "Already in the library",
    "upload.status_skipped": "Unchanged, skipped",
    "upload.status_failed": "Failed",
    "upload.status_pending": "Waiting",
    "upload.open_paper": "Open paper",
    "upload.not_pdf": "Not a PDF file.",
    "upload.too_big": "Larger than {mb} MB.",
    "upload.no_key": "Enter an API key first.",
    "upload.err_401": "The API key is missing or not valid.",
    "upload.err_403": "Uploads are not allowed on this server.",
    "upload.err_413": "The file is too large for this server.",
    "upload.err_415": "The server accepts PDF files only.",
    "upload.err_network": "The upload was interrupted (network error).",
    "upload.err_other": "The server answered {status}.",
    "key.title": "This kb needs an API key",
    "key.intro": "Reading this library needs an API key. Enter one to continue.",
    "key.button": "Continue",
    "error.title": "Something went wrong",
    "error.400": "That request is not valid",
    "error.401": "An API key is needed",
    "error.403": "Not allowed",
    "error.404": "Not found",
    "error.409": "Conflict",
    "error.413": "Too large",
    "error.415": "Unsupported file",
    "error.422": "That request is not valid",
    "error.home": "Go to the search page",
    "footer.text": "kb: a self-hosted bilingual library of AI-safety papers.",
}

ZH: dict[str, str] = {
    "app.tagline": "AI 安全论文中英双语检索",
    "nav.search": "检索",
    "nav.upload": "上传",
    "nav.api": "API 文档",
    "nav.switch": "English",
    "nav.switch_title": "将界面切换为英文",
    "search.placeholder": "用中文或英文检索论文，或粘贴一段摘要",
    "search.button": "检索",
    "search.lang": "语言",
    "search.lang_all": "全部",
    "search.lang_en": "English",
    "search.lang_zh": "中文",
    "search.years": "年份",
    "search.year_from": "从",
    "search.year_to": "到",
    "search.results": "“{q}”共找到 {n} 篇论文（{ms} 毫秒）",
    "search.results_one": "“{q}”共找到 1 篇论文（{ms} 毫秒）",
    "search.no_results": "在当前筛选条件下，没有与“{q}”相关的论文。",
    "search.no_results_hint": "请减少关键词、换一种语言，或放宽年份范围。",
    "search.try": "试试：",
    "search.recent": "最近添加",
    "search.library": "共 {papers} 篇论文，{chunks} 个段落",
    "search.empty_library": "文库为空。请先上传 PDF。",
    "card.page": "第 {n} 页",
    "card.open_pdf": "在第 {n} 页打开 PDF",
    "card.open_pdf_short": "PDF",
    "card.translations": "译本：",
    "card.related": "相关研究",
    "card.related_loading": "加载中…",
    "card.related_fallback": "在论文页面查看相关研究",
    "card.no_authors": "作者不详",
    "card.no_year": "年份不详",
    "lang.en": "EN",
    "lang.zh": "中文",
    "lang.other": "其他",
    "paper.authors": "作者",
    "paper.year": "年份",
    "paper.language": "语言",
    "paper.source": "来源",
    "paper.added": "添加时间",
    "paper.pages": "页数",
    "paper.tags": "标签",
    "paper.abstract": "摘要",
    "paper.no_abstract": "未找到这篇论文的摘要。",
    "paper.files": "文件",
    "paper.no_files": "这篇论文没有保存 PDF（来自元数据记录）。",
    "paper.open_pdf": "打开 PDF",
    "paper.needs_ocr": "以下页面没有可用文本（需要 OCR）：{pages}",
    "paper.translations": "译本",
    "paper.no_translations": "文库中没有这篇论文的译本。",
    "paper.related": "相关论文",
    "paper.related_en": "English",
    "paper.related_zh": "中文",
    "paper.related_other": "其他语言",
    "paper.related_none": "暂无。",
    "paper.translation_badge": "译本",
    "paper.collections": "所属合集与笔记",
    "paper.no_collections": "这篇论文尚未加入任何合集。",
    "paper.no_note": "（无笔记）",
    "paper.back": "返回检索",
    "upload.title": "上传 PDF",
    "upload.intro": "将 PDF 拖到此处即可加入文库（每个文件不超过 {mb} MB）。"
    "每个文件会在后台读取、切分为段落并建立索引。",
    "upload.readonly": "此 kb 为只读：服务器未配置 API 密钥（KB_API_KEYS）。",
    "upload.key": "API 密钥",
    "upload.key_hint": "上传需要密钥；只保存在本浏览器中。",
    "upload.key_save": "记住",
    "upload.key_forget": "清除",
    "upload.drop": "将 PDF 拖到这里",
    "upload.or": "或",
    "upload.choose": "选择文件",
    "upload.queued": "等待中",
    "upload.uploading": "正在上传 {pct}%",
    "upload.processing": "正在处理…",
    "upload.status_ingested": "已入库",
    "upload.status_updated": "已更新",
    "upload.status_duplicate": "文库中已有",
    "upload.status_skipped": "未改变，已跳过",
    "upload.status_failed": "失败",
    "upload.status_pending": "等待中",
    "upload.open_paper": "打开论文",
    "upload.not_pdf": "不是 PDF 文件。",
    "upload.too_big": "超过 {mb} MB。",
    "upload.no_key": "请先输入 API 密钥。",
    "upload.err_401": "API 密钥缺失或无效。",
    "upload.err_403": "此服务器不允许上传。",
    "upload.err_413": "文件超出服务器允许的大小。",
    "upload.err_415": "服务器只接受 PDF 文件。",
    "upload.err_network": "上传中断（网络错误）。",
    "upload.err_other": "服务器返回 {status}。",
    "key.title": "此 kb 需要 API 密钥",
    "key.intro": "读取此文库需要 API 密钥。请输入密钥后继续。",
    "key.button": "继续",
    "error.title": "出错了",
    "error.400": "请求无效",
    "error.401": "需要 API 密钥",
    "error.403": "不允许此操作",
    "error.404": "未找到",
    "error.409": "冲突",
    "error.413": "文件过大",
    "error.415": "不支持的文件",
    "error.422": "请求无效",
    "error.home": "前往检索页面",
    "footer.text": "kb：自托管的 AI 安全论文中英双语文库。",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}

# The strings kb.js shows (it reads them from a JSON block on the page).
JS_KEYS = (
    "card.related_loading",
    *(k for k in EN if k.startswith(("upload.status_", "upload.err_"))),
    "upload.queued",
    "upload.uploading",
    "upload.processing",
    "upload.open_paper",
    "upload.not_pdf",
    "upload.too_big",
    "upload.no_key",
)


def pick_lang(cookie: str | None, accept_language: str | None) -> str:
    """The interface language: the cookie when valid, else the best of Accept-Language."""
    if cookie in UI_LANGS:
        return cookie
    best, best_q = "en", 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        code = tag.strip().lower()[:2]
        if code not in UI_LANGS:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > best_q:
            best, best_q = code, q
    return best


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` for one language; an unknown key falls back to English."""
    catalogue = CATALOGUES.get(lang, EN)

    def t(key: str, **values: object) -> str:
        text = catalogue.get(key) or EN[key]
        return text.format(**values) if values else text

    return t


def js_messages(lang: str) -> dict[str, str]:
    """The messages kb.js needs, in one language."""
    catalogue = CATALOGUES.get(lang, EN)
    return {k: catalogue[k] for k in JS_KEYS}
