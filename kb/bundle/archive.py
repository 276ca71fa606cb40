"""The ``.kbundle`` archive: one zip file that carries papers, chunks and vectors between kbs.

Storage layer for ``kb.bundle.export`` (export and import). Members, and nothing else:

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
from pathlib import Path
from typing import IO, Any

import numpy as np

from kb.bundle.records import (
    BundleCollection,
    BundleEncoder,
    BundlePaper,
    fold_name,
)
from kb.errors import InvalidInput
from kb.store import atomic_path

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
