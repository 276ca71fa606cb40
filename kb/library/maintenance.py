"""Library maintenance: corrections, translation links, re-embedding, checks and repair.

A mixin of ``kb.library.facade.Library`` (split out to keep modules small); it uses the Library's
store, encoders and lock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from index.dense import DenseIndex
from kb.errors import InvalidInput
from kb.library.doctor import DoctorReport, diagnose
from kb.library.encoders import keyword_text, passage_text, second_encoder
from kb.library.links import find_links
from kb.store import Store
from kb.types import Paper, SearchHit, SearchResponse

if TYPE_CHECKING:
    from kb.library.facade import Library as _Base
else:
    _Base = object


class Maintenance(_Base):
    """Methods of the Library that change or check what is already stored."""

    def edit(self, ref: str | int, fields: dict[str, Any]) -> Paper:
        """Correct a paper's metadata; the correction is kept and survives re-ingest.

        A new title is re-embedded with the chunks (each chunk is embedded with its title).
        """
        fields = check_edit(fields)
        with self._lock:
            paper = self.paper(ref)
            self.store.edit_paper(paper.id, fields)
            if "title" in fields and fields["title"] != paper.title:
                self._reembed_paper(paper.id, fields["title"])
            return self.store.paper(paper.id)

    def _reembed_paper(self, paper_id: int, title: str) -> None:
        chunks = self.store.chunks_by_ids(self.store.chunk_ids_of(paper_id))
        ids = sorted(chunks)
        texts = [passage_text(title, chunks[i].text) for i in ids]
        langs = [chunks[i].lang for i in ids]
        for side in self.dense:
            vecs = side.embed_passages(texts)
            self.store.set_vectors(ids, vecs, slot=side.slot)
            side.remove(ids)
            side.add(ids, vecs, langs)
        self.store.set_keyword_texts([(i, keyword_text(title, chunks[i].text)) for i in ids])
        self._save_index()

    def link_translations(self) -> int:
        """Find which papers are translations of each other and record the links."""
        with self._lock:
            links = find_links(self.store, self.dense)
            self.store.set_links(links)
            return len(links)

    def doctor(self, *, repair: bool = False) -> DoctorReport:
        """Check SQLite against the indexes (see ``kb.library.doctor``); optionally repair."""
        with self._lock:
            return diagnose(self, repair=repair)

    def repair(self, problems: dict[str, list[int]]) -> None:
        """Fix what ``doctor`` found: orphans, missing vectors and keyword rows, indexes."""
        self.store.delete_keyword_rows(problems.get("keyword_rows_without_chunk", []))
        for paper_id in problems.get("papers_without_chunks", []):
            self.store.remove_paper(paper_id)
        lacking = problems.get("chunks_without_vector", [])
        if lacking:
            chunks = self.store.chunks_by_ids(lacking)
            papers = self.store.papers_by_ids(list({c.paper_id for c in chunks.values()}))
            ids = sorted(chunks)
            texts = [passage_text(papers[chunks[i].paper_id].title, chunks[i].text) for i in ids]
            main = self.dense_unloaded()[0]
            self.store.set_vectors(ids, main.embed_passages(texts))
        self._dense = self.dense_unloaded()
        self._backfill()  # second-encoder vectors and keyword rows that are missing
        generation = self.store.generation()
        for side in self._dense:
            side.rebuild()
        if self.store.generation() == generation:
            self.store.mark_mirrored(generation)

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the current encoders and rebuild the indexes."""
        with self._lock:
            main = DenseIndex(self.store, self.embedder, self.settings.index_dir, None, {})
            second = self._second or second_encoder(self.settings)
            sides = [main] + ([] if second is None else [
                DenseIndex(self.store, second, self.settings.index_dir / second.name,
                           second.name, {})])  # fmt: skip
            total = self.store.stats()["chunks"]
            for side in sides:
                self.store.set_state(side.state_key, '{"model": "(reindex in progress)"}')
            done = 0
            for batch in self.store.iter_chunk_texts(batch=max(64, self.settings.batch_size * 4)):
                ids = [cid for cid, _, _ in batch]
                texts = [passage_text(title, text) for _, title, text in batch]
                for side in sides:
                    self.store.set_vectors(ids, side.embed_passages(texts), slot=side.slot)
                done += len(batch)
                if progress:
                    progress(done, total)
            for side in sides:
                side.extra = self._index_extra()
                side.reset()
            self._dense = None
            return done


def translations_first(response: SearchResponse, paper: Paper, store: Store) -> SearchResponse:
    """Put the paper's translations first, marked as such (fetched if the search missed them)."""
    if not paper.translations:
        return response
    found = {hit.paper.id: hit for hit in response.results}
    twins = store.papers_by_ids(paper.translations)
    first = [
        dataclasses.replace(found.get(t) or SearchHit(0.0, twins[t], []), relation="translation")
        for t in paper.translations
        if t in twins
    ]
    rest = [hit for hit in response.results if hit.paper.id not in twins]
    results = (first + rest)[: max(len(response.results), len(first))]
    return dataclasses.replace(response, results=results)


def check_edit(fields: dict[str, Any]) -> dict[str, Any]:
    """Clean user corrections (``kb edit``): strip text, split authors, check year and ids."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if name == "authors":
            items = value if isinstance(value, list) else str(value).replace("；", ";").split(";")
            value = [a.strip() for a in items if str(a).strip()]
        elif name == "year":
            if not (isinstance(value, int) and 1000 <= value <= 3000):
                raise InvalidInput(f"year must be a year such as 2024, not {value!r}.")
        elif name == "abstract":  # stored as text, never null: clearing leaves ""
            value = str(value).strip()
        else:
            value = str(value).strip() or None
            if name == "title" and value is None:
                raise InvalidInput("The title cannot be empty.")
        out[name] = value
    if not out:
        raise InvalidInput("Nothing to change: give at least one field (e.g. --title).")
    return out
