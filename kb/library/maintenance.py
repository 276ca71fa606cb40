"""The maintenance service: checks and repair (``kb doctor``), re-embedding (``kb reindex``)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from typing import Any

from index.dense import DenseIndex
from kb.errors import translate
from kb.library.core import Core
from kb.library.doctor import DoctorReport, diagnose, wrong_size_key
from kb.library.encoders import passage_text

LOW_DISK_BYTES = 256 << 20  # under this much free space in the data folder: degraded


class Maintenance:
    """Changes or checks what is already stored."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def health(self) -> dict[str, Any]:
        """What a health check reports, cheaply (no model loading, no full scans).

        ``status`` is ``ok``, ``degraded`` (answering, but ``problems`` says what is wrong and
        what to do) or ``error`` (the store cannot be read). ``repairs`` lists what opening
        the indexes found damaged and rebuilt since the start.
        """
        core, problems = self.core, []
        try:
            with core.lock:
                stats = core.store.papers.stats()
                problems += self._index_problems()
        except sqlite3.Error as e:
            why = translate(e)
            return {"status": "error", "papers": 0, "chunks": 0, "model": core.settings.model,
                    "problems": [str(why)], "repairs": list(core.repairs)}  # fmt: skip
        try:
            free = shutil.disk_usage(core.settings.data_dir).free
        except OSError:
            free = None
        if free is not None and free < LOW_DISK_BYTES:
            problems.append(
                f"only {free >> 20} MiB free in {core.settings.data_dir}: writes may soon fail "
                "(507); free some space"
            )
        return {
            "status": "degraded" if problems else "ok",
            "papers": stats["papers"],
            "chunks": stats["chunks"],
            "model": core.settings.model,
            "problems": problems,
            "repairs": list(core.repairs),
        }

    def _index_problems(self) -> list[str]:
        """Indexes that do not hold as many vectors as the store. Hold ``core.lock``."""
        sides = self.core.opened()
        if sides is None:
            return ["the models and indexes are not loaded yet (the first search loads them)"]
        if self.core.store.changed_elsewhere():
            return []  # another process wrote: the next request reloads the indexes
        found = []
        for side in sides:
            stored = self.core.store.chunks.count_vectors(slot=side.slot)
            if side.vectors.size != stored:
                found.append(
                    f"the {side.embedder.name} index holds {side.vectors.size} vectors, the store "
                    f"{stored}: run `kb doctor --repair`"
                )
        return found

    def doctor(self, *, repair: bool = False) -> DoctorReport:
        """Check SQLite against the indexes (see ``kb.library.doctor``); optionally repair."""
        with self.core.lock:
            return diagnose(self.core, self.repair if repair else None)

    def repair(self, problems: dict[str, list[int]]) -> None:
        """Fix what ``doctor`` found: orphans, missing vectors and keyword rows, indexes (the
        FAISS ones and the tantivy keyword index)."""
        self.core.store.keywords.delete_rows(problems.get("keyword_rows_without_chunk", []))
        for paper_id in problems.get("papers_without_chunks", []):
            self.core.store.papers.remove(paper_id)
        for side in self.core.unloaded():  # embedded again below, as missing ones are
            self.core.store.chunks.drop_vectors(
                problems.get(wrong_size_key(side.slot), []), slot=side.slot
            )
        lacking = problems.get("chunks_without_vector", []) + problems.get(wrong_size_key(None), [])
        if lacking:
            chunks = self.core.store.chunks.by_ids(lacking)
            papers = self.core.store.papers.by_ids(list({c.paper_id for c in chunks.values()}))
            ids = sorted(chunks)
            texts = [passage_text(papers[chunks[i].paper_id].title, chunks[i].text) for i in ids]
            main = self.core.unloaded()[0]
            self.core.store.chunks.set_vectors(ids, main.embed_passages(texts))
        sides = self.core.unloaded()
        self.core.replace_indexes(sides)
        self.core.backfill(sides)  # second-encoder vectors and keyword rows that are missing
        generation = self.core.store.generation()
        for side in sides:
            side.rebuild()
        if self.core.store.generation() == generation:
            self.core.store.mark_mirrored(generation)
        self.core.rebuild_terms()

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the current encoders and rebuild the indexes."""
        with self.core.lock:
            store, folder = self.core.store, self.core.settings.index_dir
            first, second = self.core.embedder(), self.core.second_embedder()
            plan = self.core.index_plan()
            main = DenseIndex(store, first, folder, None, {}, self.core.alignment(first), plan)
            sides = [main] + ([] if second is None else [
                DenseIndex(
                    store, second, folder / second.name, second.name, {},
                    self.core.alignment(second), plan,
                )
            ])  # fmt: skip
            total = self.core.store.papers.stats()["chunks"]
            for side in sides:
                self.core.store.set_state(side.state_key, '{"model": "(reindex in progress)"}')
            done = 0
            batch_size = max(64, self.core.settings.batch_size * 4)
            for batch in self.core.store.chunks.iter_texts(batch=batch_size):
                ids = [cid for cid, _, _ in batch]
                texts = [passage_text(title, text) for _, title, text in batch]
                for side in sides:
                    vecs = side.embed_passages(texts)
                    self.core.store.chunks.set_vectors(ids, vecs, slot=side.slot)
                done += len(batch)
                if progress:
                    progress(done, total)
            for side in sides:
                side.extra = self.core.index_extra()
                side.reset()
            self.core.forget_indexes()
            return done
