"""The records of a ``.kbundle``: papers, encoders and collections, as a declared model.

Pure data (no I/O), used by ``kb.bundle.archive`` to write and read archives. Each record is a
pydantic dataclass whose field types are its checks: strict JSON types (no "7" for 7), integers
SQLite can store (64-bit), years 1000-9999, language codes, SHA-256 digests, edits of the fields
`kb edit` changes, and text that is valid UTF-8 without control characters (tab and line feed
are kept; the others are removed). A field kb does not know is refused, as it would be lost.

Every record is checked when it is read (``BundlePaper.from_json``, ``BundleEncoder.from_dict``,
``BundleCollection.from_dict``), so a damaged or hostile bundle is refused, in one sentence that
names the line and the field, before anything is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import asdict, field
from typing import Annotated, Any, TypeVar

import numpy as np
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    with_config,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails
from typing_extensions import TypedDict  # pydantic checks only this TypedDict on Python 3.11

from ingest.safejson import MAX_DEPTH, loads_limited
from kb.errors import InvalidInput
from kb.library.collections import MAX_NAME, MAX_TEXT
from kb.types import AuthorKind, Extractor, SourceKind

_T = TypeVar("_T")
_FORBID = ConfigDict(extra="forbid")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Unicode Cc but \t and \n
_LANG_RE = re.compile(r"[a-z]{2,3}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_CONTAINERS = 200_000  # arrays and objects in one paper line (its chunks and pages)


def _text(value: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid UTF-8 text (it holds a lone surrogate)") from None
    return value if value.isprintable() else _CONTROL_RE.sub("", value)  # the first is fast


def _check(test: Callable[[Any], object], problem: str, show: bool = True) -> AfterValidator:
    """A validator that refuses a value failing ``test``: "<field> <problem>[, not <value>]"."""

    def check(value: _T) -> _T:
        if not test(value):
            raise ValueError(f"{problem}, not {_show(value)}" if show else problem)
        return value

    return AfterValidator(check)


def _range(low: int, high: int, what: str) -> AfterValidator:
    return _check(lambda n: low <= n <= high, f"must be {what}")


_OVER_MAX = f"is over {MAX_TEXT} characters"
_BAD_NAME = f"must have 1 to {MAX_NAME} characters, not only digits"


def _collection_name(name: str) -> bool:
    folded = " ".join(name.split())
    return 0 < len(folded) <= MAX_NAME and not folded.isdigit()


Text = Annotated[StrictStr, AfterValidator(_text)]
Name = Annotated[Text, _check(bool, "must not be empty", show=False)]
Int64 = Annotated[StrictInt, _range(-(2**63), 2**63 - 1, "a 64-bit integer")]
Row = Annotated[StrictInt, _range(0, 2**63 - 1, "a row number >= 0")]
Year = Annotated[StrictInt, _range(1000, 9999, "a year from 1000 to 9999")]
EditYear = Annotated[StrictInt, _range(1000, 3000, "a year from 1000 to 3000")]  # as check_edit
Lang = Annotated[Text, _check(_LANG_RE.fullmatch, "must be a language code such as 'en' or 'zh'")]
Sha256 = Annotated[Text, _check(_SHA256_RE.fullmatch, "must be a SHA-256 hex digest")]
Quality = Annotated[
    float, Field(strict=True, allow_inf_nan=False), _check(lambda q: 0 <= q <= 1, "must be 0 to 1")
]
Note = Annotated[Text, _check(lambda t: len(t.strip()) <= MAX_TEXT, _OVER_MAX, show=False)]
CollectionName = Annotated[Text, _check(_collection_name, _BAD_NAME, show=False)]


def known_lang(code: str) -> str:
    """``code`` if a bundle can carry it as a language code, else "und" (undetermined)."""
    return code if _LANG_RE.fullmatch(code) else "und"


# ---------------------------------------------------------------- the records


@dataclass(frozen=True, config=_FORBID)
class BundleEncoder:
    """One encoder whose vectors the bundle carries; ``slot`` None is the main model."""

    slot: Text | None
    model: Text
    dim: Annotated[StrictInt, _range(1, 2**63 - 1, "a dimension >= 1")]
    fingerprint: Text

    @classmethod
    def from_dict(cls, data: Any, where: str) -> BundleEncoder:
        """Parse and check one encoder of the manifest; ``where`` names it in the error."""
        return _parse(cls, data, where, "encoder")


@dataclass(config=_FORBID)
class BundleMeta:
    """A paper's metadata: the fields of ``kb.types.PaperMeta``, user edits applied."""

    title: Name
    authors: list[Text] = field(default_factory=list)
    year: Year | None = None
    abstract: Text | None = ""
    doi: Text | None = None
    arxiv_id: Text | None = None
    lang: Lang | None = "und"
    n_pages: Int64 | None = None
    url: Text | None = None
    author_kind: AuthorKind = "person"
    title_en: Text = ""


@dataclass(config=_FORBID)
class BundleChunk:
    """One chunk of a paper: the fields of ``kb.types.ChunkDraft``."""

    ord: Int64
    text: Name
    lang: Lang
    page_start: Int64 | None = None
    page_end: Int64 | None = None


@dataclass(config=_FORBID)
class BundlePage:
    """How one PDF page's text was obtained: the fields of ``kb.types.PageReport``."""

    number: Int64
    extractor: Extractor
    quality: Quality
    chars: Int64
    needs_ocr: StrictBool = False


@with_config(_FORBID)
class BundleEdits(TypedDict, total=False):
    """The user's corrections of a paper (``kb.store.works.EDITABLE``); None: a cleared field."""

    title: Name
    authors: list[Text] | None
    year: EditYear | None
    abstract: Text | None
    doi: Text | None
    arxiv_id: Text | None
    url: Text | None
    author_kind: AuthorKind
    title_en: Text | None
    lang: Lang


@dataclass(config=_FORBID)
class BundlePaper:
    """One paper as a bundle carries it (a line of papers.jsonl)."""

    key: Name
    kind: SourceKind
    source: Name
    content_hash: Name
    meta: BundleMeta
    chunks: Annotated[list[BundleChunk], Field(min_length=1)]
    row: Row  # first row of its chunks in every vectors/N.npy
    tags: list[Text] = field(default_factory=list)
    edits: BundleEdits = field(default_factory=BundleEdits)
    work_ids: list[Text] = field(default_factory=list)
    pages: list[BundlePage] = field(default_factory=list)
    cited: list[Text] = field(default_factory=list)
    signature: Text | None = None  # MinHash signature, uint64 little-endian, hex
    translations: list[Text] = field(default_factory=list)  # keys of its translations
    pdfs: list[Sha256] = field(default_factory=list)  # content hashes of its files in pdfs/

    @field_validator("chunks")
    @classmethod
    def _distinct_ords(cls, chunks: list[BundleChunk]) -> list[BundleChunk]:
        if len({c.ord for c in chunks}) != len(chunks):
            raise ValueError("have two with the same ord")
        return chunks

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str | bytes, where: str) -> BundlePaper:
        """Parse and check one line (nesting at most ``MAX_DEPTH``); ``where`` names it."""
        raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
        try:
            data = loads_limited(
                raw, max_bytes=len(raw), max_depth=MAX_DEPTH, max_containers=MAX_CONTAINERS
            )
        except InvalidInput as e:
            raise InvalidInput(f"{where} is not a valid paper record: {e}") from e
        return _parse(cls, data, where, "paper record")

    @property
    def signature_array(self) -> np.ndarray | None:
        if not self.signature:
            return None
        try:
            return np.frombuffer(bytes.fromhex(self.signature), dtype="<u8").astype(np.uint64)
        except ValueError:
            return None


@dataclass(config=_FORBID)
class BundleItem:
    """A paper in a bundle collection: its bundle key, the group's note, when it was added."""

    key: Text
    note: Note = ""
    added_at: Text = ""


@dataclass(config=_FORBID)
class BundleCollection:
    """One collection (reading list) as a bundle carries it, in ``collections.json``."""

    name: CollectionName
    description: Note = ""
    created_at: Text = ""
    items: list[BundleItem] = field(default_factory=list)

    @field_validator("items")
    @classmethod
    def _known_papers(cls, items: list[BundleItem], info: ValidationInfo) -> list[BundleItem]:
        if len({i.key for i in items}) != len(items):
            raise ValueError("list a paper twice")
        keys = (info.context or {}).get("keys")
        if keys is not None and (unknown := [i.key for i in items if i.key not in keys]):
            raise ValueError(f"list papers the bundle does not hold ({unknown[:3]})")
        return items

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str, keys: AbstractSet[str]) -> BundleCollection:
        """Parse and check one collection; ``keys`` are the bundle's paper keys."""
        return _parse(cls, data, where, "collection", {"keys": keys})


def fold_name(name: str) -> str:
    """A collection name as kb compares them: spaces collapsed, ASCII case ignored."""
    return "".join(c.lower() if c.isascii() else c for c in " ".join(name.split()))


# ---------------------------------------------------------------- checking


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}
_PROBLEMS = {
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "dataclass_type": "must be an object",
    "finite_number": "must be a finite number",
}


def _parse(
    kind: type[_T], data: Any, where: str, noun: str, context: dict[str, Any] | None = None
) -> _T:
    """``data`` checked as a ``kind`` record, or InvalidInput naming ``where`` and the field."""
    adapter = _ADAPTERS.get(kind) or _ADAPTERS.setdefault(kind, TypeAdapter(kind))
    try:
        found: _T = adapter.validate_python(data, context=context)
    except ValidationError as e:
        raise InvalidInput(_sentence(e.errors(include_url=False)[0], where, noun)) from e
    return found


def _sentence(error: ErrorDetails, where: str, noun: str) -> str:
    """One validation error as "<where>: <field> <problem>."."""
    kind, value = error["type"], _show(error["input"])
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])[1:]
    if kind in ("missing", "unexpected_keyword_argument", "extra_forbidden"):
        why = f"{path} is missing" if kind == "missing" else f"it has no field {path}"
        return f"{where} is not a valid {noun}: {why}."
    if not path:
        return f"{where} is not an object."
    if kind == "string_type":
        return f"{where}: {path} is {value}, but text fields must be strings."
    if kind == "value_error":
        return f"{where}: {path} {error['ctx']['error']}."
    if kind == "too_short":
        return f"{where}: {path} must not be empty."
    if kind == "literal_error":
        problem = f"must be {error['ctx']['expected']}"
    else:
        problem = _PROBLEMS.get(kind) or error["msg"].replace("Input should", "should", 1)
    return f"{where}: {path} {problem}, not {value}."


def _show(value: Any) -> str:
    """A value as JSON, cut to 40 characters, printable whatever it holds."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = f"a {type(value).__name__}"
    text = text if len(text) <= 40 else text[:37] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
