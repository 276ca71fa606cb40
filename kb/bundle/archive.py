"""The ``.kbundle`` archive: one zip file that carries papers, chunks and vectors between kbs.

Storage layer for ``kb.bundle.export`` (export and import). Members, and nothing else:

    manifest.json        format, version, kb version, created_at, encoders (slot, model, dim,
                         fingerprint), chunking, counts
    papers.jsonl         one ``BundlePaper`` per line: metadata, tags, edits, work ids, page
                         reports, chunks, and the first row of its chunks in the vector files
    vectors/N.npy        float32 [chunks, dim]: the raw stored vectors of encoder N of the
                         manifest (the store's float16 values, widened), one row per chunk,
                         in the order of papers.jsonl
    collections.json     (version 2) the collections (reading lists) of the bundle's papers:
                         ``BundleCollection`` objects, their items by paper key, with notes
    pdfs/SHA256.pdf      with ``--with-pdfs``: the papers' PDF files, named by content hash

Version 1 bundles (no collections) are still read.

A bundle is read only after every member's CRC and size is checked, every name is one of the
above (no absolute paths, ``..`` or links), every PDF is a PDF with the hash it is named by,
and every paper line and every collection parses, so a damaged or hostile archive is refused
before anything is written. Member names are never used as paths, and nothing is unpacked.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import zipfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from ingest.safejson import loads_limited
from kb.bundle.records import (
    BundleCollection,
    BundleEncoder,
    BundlePaper,
    fold_name,
)
from kb.errors import InvalidInput
from kb.store import atomic_path
from kb.store.uploads import PDF_MAGIC

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
MAX_LINE_BYTES = 32 << 20  # one paper of papers.jsonl: its metadata and every chunk's text
MAX_RATIO = 100  # a member may unpack to this many times its packed size (JSON packs ~5x)
_RATIO_SLACK = 1 << 20  # small members pack better; a mebibyte is no bomb
_BLOCK = 1 << 18  # read in blocks of 256 KiB: a small, fixed part of the bound


def vectors_member(n: int) -> str:
    return f"vectors/{n}.npy"


def pdf_member(content_hash: str) -> str:
    return f"pdfs/{content_hash}.pdf"


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
    """A checked bundle: its manifest, encoders, papers, and its vectors read in paper order.

    Everything is checked when the reader is made, before anything is written: every
    member's name, CRC and size (a member unpacking to over ``MAX_RATIO`` times its packed
    size is a zip bomb; vector files must be stored uncompressed, as kb writes them, so the
    vectors an import adds are no larger than the bundle itself), every PDF's SHA-256 against
    its name and its ``%PDF-`` header, every paper line (at most ``MAX_LINE_BYTES``), every
    collection and every vector file's header. Nothing is unpacked to disk: the vectors are
    read from the archive row by row, one paper at a time (``papers_with_vectors``).
    """

    def __init__(self, path: Path) -> None:
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
            for n, enc in enumerate(self.encoders):
                self._open_vectors(n, enc).close()  # the header and size, checked now
        except BaseException:
            self._zip.close()
            raise

    def close(self) -> None:
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
            self._check_size(info)
        if MANIFEST not in names or PAPERS not in names:
            raise InvalidInput(
                f"{self.path.name!r} is not a kb bundle: it has no {MANIFEST} or {PAPERS}."
            )
        for info in self._zip.infolist():  # reads every member once, in blocks
            try:
                self._check_content(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as e:
                raise self._damaged(str(e)) from e

    def _check_size(self, info: zipfile.ZipInfo) -> None:
        if info.filename.startswith("vectors/") and info.compress_type != zipfile.ZIP_STORED:
            raise self._damaged(f"{info.filename} is compressed (kb stores vectors as they are)")
        if info.file_size > MAX_RATIO * info.compress_size + _RATIO_SLACK:
            raise self._damaged(
                f"{info.filename} would unpack to {info.file_size} bytes from "
                f"{info.compress_size} (a zip bomb?)"
            )

    def _check_content(self, info: zipfile.ZipInfo) -> None:
        """Read one member through (zipfile checks its CRC at the end); a PDF must start with
        ``%PDF-`` and have the SHA-256 it is named by."""
        pdf = info.filename.startswith("pdfs/")
        digest, head = hashlib.sha256(), b""
        with self._zip.open(info) as fh:
            while block := fh.read(_BLOCK):
                if pdf:
                    digest.update(block)
                    head = head or block[: len(PDF_MAGIC)]
        if not pdf:
            return
        if not head.startswith(PDF_MAGIC):
            raise self._damaged(f"{info.filename} is not a PDF (it does not start with %PDF-)")
        if digest.hexdigest() != info.filename[len("pdfs/") : -len(".pdf")]:
            raise self._damaged(f"{info.filename} does not match its SHA-256 name")

    def _read_manifest(self) -> dict[str, Any]:
        if self._zip.getinfo(MANIFEST).file_size > _MAX_MANIFEST:
            raise self._damaged(f"{MANIFEST} is too large")
        try:
            manifest = loads_limited(self._zip.read(MANIFEST), max_bytes=_MAX_MANIFEST)
        except InvalidInput as e:
            raise self._damaged(f"{MANIFEST} is {e}".rstrip(".")) from e
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
            data = loads_limited(self._zip.read(info), max_bytes=_MAX_COLLECTIONS)
        except InvalidInput as e:
            raise self._damaged(f"{COLLECTIONS} is {e}".rstrip(".")) from e
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
        """The paper records in order, each line read within ``MAX_LINE_BYTES``."""
        with self._zip.open(PAPERS) as fh:
            n = 0
            while raw := fh.readline(MAX_LINE_BYTES + 1):
                n += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise self._damaged(f"{PAPERS}:{n} is over {MAX_LINE_BYTES >> 20} MiB")
                if raw.strip():
                    yield BundlePaper.from_json(raw, f"{PAPERS}:{n}")

    def papers_with_vectors(
        self, columns: list[int]
    ) -> Generator[tuple[BundlePaper, list[np.ndarray]], None, None]:
        """Each paper with its chunks' rows from the vector files ``columns`` (encoder
        numbers of the manifest), read in step: one paper's vectors in memory at a time."""
        readers = [self._open_vectors(n, self.encoders[n]) for n in columns]
        try:
            for paper in self.papers():
                yield paper, [r.take(len(paper.chunks)) for r in readers]
        finally:
            for r in readers:
                r.close()

    def _open_vectors(self, n: int, enc: BundleEncoder) -> _VectorRows:
        name = vectors_member(n)
        info = self._zip.NameToInfo.get(name)
        expected = self.n_chunks * enc.dim * 4
        if info is None or not expected <= info.file_size <= expected + _NPY_HEADER_MAX:
            raise self._damaged(f"{name} is missing or has the wrong size")
        fh = self._zip.open(info)
        try:
            return _VectorRows(fh, self.n_chunks, enc.dim)
        except ValueError as e:
            fh.close()
            raise self._damaged(f"{name} is not a float32 vector file ({e})") from e

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


class _VectorRows:
    """One ``vectors/N.npy`` member read front to back: its header checked, then rows on demand.

    Raises ValueError when the header is not that of a C-ordered little-endian float32
    array of shape (rows, dim).
    """

    def __init__(self, fh: IO[bytes], rows: int, dim: int) -> None:
        self._fh, self.dim = fh, dim
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"npy format version {version}")
        if dtype != np.dtype("<f4") or fortran or tuple(shape) != (rows, dim):
            raise ValueError(f"it holds {dtype} {tuple(shape)}")

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` rows (float32, shape (n, dim))."""
        size = n * self.dim * 4
        data = self._fh.read(size)
        if len(data) != size:
            raise InvalidInput("A vector file of the bundle ends early; it is damaged.")
        return np.frombuffer(data, dtype="<f4").reshape(n, self.dim)

    def close(self) -> None:
        self._fh.close()


def _copy_hashing(src: IO[bytes], out: IO[bytes], digest: Any) -> None:
    while block := src.read(1 << 20):
        digest.update(block)
        out.write(block)


def _encoders(manifest: dict[str, Any], name: str) -> list[BundleEncoder]:
    listed = manifest.get("encoders")
    if not isinstance(listed, list) or not listed:
        raise InvalidInput(f"The manifest of {name!r} lists no valid encoders.")
    where = f"The manifest of {name!r}: encoder"
    return [BundleEncoder.from_dict(e, f"{where} {n}") for n, e in enumerate(listed, 1)]
