"""The ``.kbundle`` archive: one zip file that carries papers, chunks and vectors between kbs.

Storage layer for ``kb.bundle`` (export and import). Members, and nothing else:

    manifest.json        format, version, kb version, created_at, encoders (slot, model, dim,
                         fingerprint), chunking, counts
    papers.jsonl         one ``BundlePaper`` per line: metadata, tags, edits, work ids, page
                         reports, chunks, and the first row of its chunks in the vector files
    vectors/N.npy        float32 [chunks, dim]: the raw stored vectors of encoder N of the
                         manifest, one row per chunk, in the order of papers.jsonl
    collections.json     (version 2) the collections (reading lists) of the bundle's papers:
                         ``BundleCollection`` objects, their items by paper key, with notes
    pdfs/SHA256.pdf      with ``--with-pdfs``: the papers' PDF files, named by content hash

Version 1 bundles (no collections) are still read.

A bundle is read only after every member's CRC is checked, every name is one of the above
(no absolute paths, ``..`` or links), and every paper line and every collection parses, so a
damaged or hostile archive is refused before anything is written. Member names are never used
as paths.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import zipfile
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from kb.collections import MAX_NAME, MAX_TEXT
from kb.errors import InvalidInput
from kb.storage import atomic_path

FORMAT = "kb-bundle"
FORMAT_VERSION = 2  # 2: collections.json
READS = (1, 2)  # the format versions this kb imports
MANIFEST = "manifest.json"
PAPERS = "papers.jsonl"
COLLECTIONS = "collections.json"
_MEMBER_RE = re.compile(
    r"manifest\.json|papers\.jsonl|collections\.json|vectors/\d{1,3}\.npy|pdfs/[0-9a-f]{64}\.pdf"
)
_MAX_MANIFEST = 1 << 20
_MAX_COLLECTIONS = 1 << 28
_NPY_HEADER_MAX = 1 << 16


def vectors_member(n: int) -> str:
    return f"vectors/{n}.npy"


def pdf_member(content_hash: str) -> str:
    return f"pdfs/{content_hash}.pdf"


@dataclass(frozen=True)
class BundleEncoder:
    """One encoder whose vectors the bundle carries; ``slot`` None is the main model."""

    slot: str | None
    model: str
    dim: int
    fingerprint: str


@dataclass
class BundlePaper:
    """One paper as a bundle carries it (a line of papers.jsonl)."""

    key: str
    kind: str
    source: str
    content_hash: str
    meta: dict[str, Any]  # the fields of kb.types.PaperMeta, user edits applied
    chunks: list[dict[str, Any]]  # ord, text, lang, page_start, page_end
    row: int  # first row of its chunks in every vectors/N.npy
    tags: list[str] = field(default_factory=list)
    edits: dict[str, Any] = field(default_factory=dict)  # the user's corrections
    work_ids: list[str] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)  # kb.types.PageReport fields
    cited: list[str] = field(default_factory=list)
    signature: str | None = None  # MinHash signature, uint64 little-endian, hex
    translations: list[str] = field(default_factory=list)  # keys of its translations
    pdfs: list[str] = field(default_factory=list)  # content hashes of its files in pdfs/

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str, where: str) -> BundlePaper:
        """Parse and check one line; ``where`` names it in the error."""
        try:
            data = json.loads(line)
            paper = cls(**data)
        except (ValueError, TypeError) as e:
            raise InvalidInput(f"{where} is not a valid paper record ({e}).") from e
        problem = paper._problem()
        if problem:
            raise InvalidInput(f"{where}: {problem}.")
        return paper

    def _problem(self) -> str | None:
        str_fields = (self.key, self.source, self.content_hash, self.meta.get("title"))
        if not all(isinstance(v, str) and v for v in str_fields):
            return "key, source, content_hash and title must be non-empty strings"
        if (problem := _meta_problem(self.meta)) is not None:
            return problem
        if self.kind not in ("pdf", "record"):
            return f"kind must be 'pdf' or 'record', not {self.kind!r}"
        if not isinstance(self.row, int) or self.row < 0 or not self.chunks:
            return "a paper needs chunks and a row >= 0"
        for c in self.chunks:
            if not (isinstance(c, dict) and isinstance(c.get("text"), str) and c["text"]):
                return "every chunk needs a non-empty text"
            if type(c.get("ord")) is not int or not isinstance(c.get("lang"), str):
                return "every chunk needs an integer ord and a lang"
            if any(c.get(k) is not None and type(c[k]) is not int for k in _PAGE_KEYS):
                return "chunk pages must be integers or null"
        if len({c["ord"] for c in self.chunks}) != len(self.chunks):
            return "two chunks have the same ord"
        if not all(_page_ok(p) for p in self.pages):
            return "a page report is malformed"
        if any(not isinstance(h, str) or not re.fullmatch(r"[0-9a-f]{64}", h) for h in self.pdfs):
            return "pdfs must be SHA-256 hex digests"
        lists = (self.tags, self.work_ids, self.cited, self.translations)
        if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in lists):
            return "tags, work_ids, cited and translations must be lists of strings"
        if not isinstance(self.edits, dict) or not isinstance(self.pages, list):
            return "edits must be an object and pages a list"
        return None

    @property
    def signature_array(self) -> np.ndarray | None:
        if not self.signature:
            return None
        try:
            return np.frombuffer(bytes.fromhex(self.signature), dtype="<u8").astype(np.uint64)
        except ValueError:
            return None


_PAGE_KEYS = ("page_start", "page_end")
_EXTRACTORS = ("pypdf", "pdfminer", "ocr", "none")


def _page_ok(page: Any) -> bool:
    return (
        isinstance(page, dict)
        and type(page.get("number")) is int
        and page.get("extractor") in _EXTRACTORS
        and isinstance(page.get("quality"), int | float)
        and type(page.get("chars")) is int
        and isinstance(page.get("needs_ocr", False), bool)
    )


def _meta_problem(meta: dict[str, Any]) -> str | None:
    authors = meta.get("authors", [])
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        return "authors must be a list of strings"
    for name in ("year", "n_pages"):
        if meta.get(name) is not None and type(meta[name]) is not int:
            return f"{name} must be an integer or null"
    for name in ("abstract", "doi", "arxiv_id", "url", "lang"):
        if meta.get(name) is not None and not isinstance(meta[name], str):
            return f"{name} must be a string or null"
    return None


@dataclass
class BundleItem:
    """A paper in a bundle collection: its bundle key, the group's note, when it was added."""

    key: str
    note: str = ""
    added_at: str = ""


@dataclass
class BundleCollection:
    """One collection (reading list) as a bundle carries it, in ``collections.json``."""

    name: str
    description: str = ""
    created_at: str = ""
    items: list[BundleItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str, keys: AbstractSet[str]) -> BundleCollection:
        """Parse and check one collection; ``keys`` are the bundle's paper keys."""
        if not isinstance(data, dict):
            raise InvalidInput(f"{where} is not an object.")
        try:
            raw_items = data.get("items", [])
            if not isinstance(raw_items, list):
                raise TypeError("items must be a list")
            items = [BundleItem(**i) for i in raw_items]
            found = cls(**{**data, "items": items})
        except TypeError as e:
            raise InvalidInput(f"{where} is not a valid collection ({e}).") from e
        problem = found._problem(keys)
        if problem:
            raise InvalidInput(f"{where} ({found.name!r}): {problem}.")
        return found

    def _problem(self, keys: AbstractSet[str]) -> str | None:
        texts = (self.name, self.description, self.created_at)
        texts += tuple(v for i in self.items for v in (i.key, i.note, i.added_at))
        if not all(isinstance(v, str) for v in texts):
            return "name, description, created_at and every key, note, added_at must be strings"
        name = " ".join(self.name.split())
        if not 0 < len(name) <= MAX_NAME or name.isdigit():
            return f"its name must have 1 to {MAX_NAME} characters, not only digits"
        notes = [self.description] + [i.note for i in self.items]
        if any(len(t.strip()) > MAX_TEXT for t in notes):
            return f"a description or note is over {MAX_TEXT} characters"
        if len({i.key for i in self.items}) != len(self.items):
            return "it lists a paper twice"
        if unknown := [i.key for i in self.items if i.key not in keys]:
            return f"it lists papers the bundle does not hold ({unknown[:3]})"
        return None


def fold_name(name: str) -> str:
    """A collection name as kb compares them: spaces collapsed, ASCII case ignored."""
    return "".join(c.lower() if c.isascii() else c for c in " ".join(name.split()))


# ---------------------------------------------------------------- writing


class BundleWriter:
    """Write a bundle into ``target`` (the caller makes that atomic, see ``atomic_path``).

    PDFs go into the archive as they come; papers.jsonl and the vector files are built in
    ``work`` (a temporary folder) and added at the end, with the manifest.
    """

    def __init__(
        self, target: Path, work: Path, encoders: list[BundleEncoder], n_chunks: int
    ) -> None:
        self.work, self.n_chunks = work, n_chunks
        self.rows = 0
        self.pdfs: set[str] = set()
        self._papers = open(work / PAPERS, "w", encoding="utf-8")  # noqa: SIM115
        self._vectors = [
            np.lib.format.open_memmap(
                work / f"{n}.npy", mode="w+", dtype="<f4", shape=(n_chunks, e.dim)
            )
            for n, e in enumerate(encoders)
        ]
        self._zip = zipfile.ZipFile(target, "w", allowZip64=True)

    def add_paper(self, paper: BundlePaper, vectors: list[np.ndarray]) -> None:
        """Append one paper; ``vectors`` holds its chunks' rows for each encoder, in order."""
        n = len(paper.chunks)
        if self.rows + n > self.n_chunks:
            raise InvalidInput("The library changed during the export; run it again.")
        paper.row = self.rows
        for out, vecs in zip(self._vectors, vectors, strict=True):
            out[self.rows : self.rows + n] = vecs
        self.rows += n
        self._papers.write(paper.to_json() + "\n")

    def add_pdf(self, content_hash: str, data: bytes) -> None:
        if content_hash not in self.pdfs:
            self._zip.writestr(pdf_member(content_hash), data, zipfile.ZIP_STORED)
            self.pdfs.add(content_hash)

    def finish(self, manifest: dict[str, Any], collections: list[BundleCollection]) -> None:
        """Add the papers, collections, vectors and the manifest, and close the archive."""
        if self.rows != self.n_chunks:
            raise InvalidInput("The library changed during the export; run it again.")
        self._papers.close()
        self._zip.write(self.work / PAPERS, PAPERS, zipfile.ZIP_DEFLATED)
        body = json.dumps([c.to_dict() for c in collections], ensure_ascii=False)
        self._zip.writestr(COLLECTIONS, body, zipfile.ZIP_DEFLATED)
        for n, arr in enumerate(self._vectors):
            arr.flush()
            self._zip.write(self.work / f"{n}.npy", vectors_member(n), zipfile.ZIP_STORED)
        body = json.dumps(manifest, indent=2, ensure_ascii=False)
        self._zip.writestr(MANIFEST, body, zipfile.ZIP_DEFLATED)
        self.close()

    def close(self) -> None:
        self._papers.close()
        self._vectors = []  # drops the memory maps
        self._zip.close()


# ---------------------------------------------------------------- reading


class BundleReader:
    """A checked bundle: its manifest, encoders, papers and (memory-mapped) vectors.

    Args:
        work: an empty folder for the unpacked vector files (deleted by the caller).
    """

    def __init__(self, path: Path, work: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except FileNotFoundError as e:
            raise InvalidInput(f"No bundle at {path}.") from e
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise InvalidInput(
                f"{path.name!r} is not a kb bundle or is truncated ({e}). "
                "Copy it again, or ask for a new one (`kb export-bundle`)."
            ) from e
        try:
            self._check_members()
            self.manifest = self._read_manifest()
            self.encoders = _encoders(self.manifest, path.name)
            self.n_chunks = int(self.manifest["counts"]["chunks"])
            keys = self._check_papers()
            self.collections = self._read_collections(keys)
            self.vectors = [self._unpack_vectors(n, e, work) for n, e in enumerate(self.encoders)]
        except BaseException:
            self._zip.close()
            raise

    def close(self) -> None:
        self.vectors = []
        self._zip.close()

    def _damaged(self, why: str) -> InvalidInput:
        return InvalidInput(
            f"The bundle {self.path.name!r} is damaged: {why}. Copy it again, or ask for a "
            "new one (`kb export-bundle`)."
        )

    def _check_members(self) -> None:
        names: set[str] = set()
        for info in self._zip.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode) or not _MEMBER_RE.fullmatch(info.filename):
                raise InvalidInput(
                    f"The bundle {self.path.name!r} holds {info.filename!r}, which is not part "
                    "of a kb bundle (or is a link); refusing to import it."
                )
            if info.filename in names:
                raise InvalidInput(f"The bundle {self.path.name!r} holds {info.filename!r} twice.")
            names.add(info.filename)
        if MANIFEST not in names or PAPERS not in names:
            raise InvalidInput(
                f"{self.path.name!r} is not a kb bundle: it has no {MANIFEST} or {PAPERS}."
            )
        try:
            bad = self._zip.testzip()  # reads every member once: CRC-checks all of it
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as e:
            raise self._damaged(str(e)) from e
        if bad is not None:
            raise self._damaged(f"{bad!r} fails its checksum")

    def _read_manifest(self) -> dict[str, Any]:
        if self._zip.getinfo(MANIFEST).file_size > _MAX_MANIFEST:
            raise self._damaged(f"{MANIFEST} is too large")
        try:
            manifest = json.loads(self._zip.read(MANIFEST))
        except ValueError as e:
            raise self._damaged(f"{MANIFEST} is not JSON ({e})") from e
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise InvalidInput(f"{self.path.name!r} is not a kb bundle (no format {FORMAT!r}).")
        version = manifest.get("version")
        if version not in READS:
            raise InvalidInput(
                f"The bundle {self.path.name!r} has format version {version!r}; this kb reads "
                f"versions {', '.join(map(str, READS))}. Upgrade kb (or ask for a bundle from "
                "this version)."
            )
        counts = manifest.get("counts")
        if not isinstance(counts, dict) or not isinstance(counts.get("chunks"), int):
            raise self._damaged("its manifest has no chunk count")
        return manifest

    def _check_papers(self) -> set[str]:
        """Parse every line once, so a bad line is found before anything is imported.

        Returns the papers' keys.
        """
        rows, keys = 0, set()
        for paper in self.papers():
            keys.add(paper.key)
            if paper.row != rows:
                raise self._damaged(f"paper {paper.key!r} starts at row {paper.row}, not {rows}")
            rows += len(paper.chunks)
            for h in paper.pdfs:
                if pdf_member(h) not in self._zip.NameToInfo:
                    raise self._damaged(f"paper {paper.key!r} lists a PDF it does not hold")
        if rows != self.n_chunks:
            raise self._damaged(f"its papers have {rows} chunks, its manifest {self.n_chunks}")
        return keys

    def _read_collections(self, keys: set[str]) -> list[BundleCollection]:
        """The bundle's collections, all checked (version 1 bundles have none)."""
        info = self._zip.NameToInfo.get(COLLECTIONS)
        if info is None:
            if self.manifest["version"] == 1:
                return []
            raise self._damaged(f"it has no {COLLECTIONS}")
        if info.file_size > _MAX_COLLECTIONS:
            raise self._damaged(f"{COLLECTIONS} is too large")
        try:
            data = json.loads(self._zip.read(info))
        except ValueError as e:
            raise self._damaged(f"{COLLECTIONS} is not JSON ({e})") from e
        if not isinstance(data, list):
            raise self._damaged(f"{COLLECTIONS} is not a list of collections")
        found = [
            BundleCollection.from_dict(c, f"{COLLECTIONS}: collection {n}", keys)
            for n, c in enumerate(data, 1)
        ]
        names = [fold_name(c.name) for c in found]
        if len(set(names)) != len(names):
            raise self._damaged(f"{COLLECTIONS} names a collection twice")
        return found

    def papers(self) -> Iterator[BundlePaper]:
        with self._zip.open(PAPERS) as fh:
            for n, raw in enumerate(fh, 1):
                if raw.strip():
                    yield BundlePaper.from_json(raw.decode("utf-8", "replace"), f"{PAPERS}:{n}")

    def _unpack_vectors(self, n: int, enc: BundleEncoder, work: Path) -> np.ndarray:
        name = vectors_member(n)
        info = self._zip.NameToInfo.get(name)
        expected = self.n_chunks * enc.dim * 4
        if info is None or not expected <= info.file_size <= expected + _NPY_HEADER_MAX:
            raise self._damaged(f"{name} is missing or has the wrong size")
        dest = work / f"{n}.npy"
        with self._zip.open(info) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        try:
            arr = np.load(dest, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise self._damaged(f"{name} is not a vector file ({e})") from e
        if arr.dtype != np.dtype("<f4") or arr.shape != (self.n_chunks, enc.dim):
            raise self._damaged(f"{name} holds {arr.dtype} {arr.shape}, not float32 vectors")
        return arr

    def pdf_size(self, content_hash: str) -> int:
        return self._zip.getinfo(pdf_member(content_hash)).file_size

    def copy_pdf(self, content_hash: str, dest: Path) -> None:
        """Write one PDF to ``dest`` atomically, checking it has the content hash it is named by."""
        digest = hashlib.sha256()
        with atomic_path(dest) as tmp:
            with self._zip.open(pdf_member(content_hash)) as src, open(tmp, "wb") as out:
                _copy_hashing(src, out, digest)
            if digest.hexdigest() != content_hash:
                raise self._damaged(f"{pdf_member(content_hash)} does not match its hash")


def _copy_hashing(src: BinaryIO, out: BinaryIO, digest: Any) -> None:
    while block := src.read(1 << 20):
        digest.update(block)
        out.write(block)


def _encoders(manifest: dict[str, Any], name: str) -> list[BundleEncoder]:
    try:
        found = [BundleEncoder(**e) for e in manifest["encoders"]]
    except (KeyError, TypeError) as e:
        raise InvalidInput(f"The manifest of {name!r} lists no valid encoders ({e}).") from e
    if not found or any(not isinstance(e.dim, int) or e.dim < 1 for e in found):
        raise InvalidInput(f"The manifest of {name!r} lists no valid encoders.")
    return found
