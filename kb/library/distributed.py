"""Ingest on a Ray cluster: parse in Ray tasks, embed in Ray actors, store here.

Application layer (``Library.ingest(..., ray=ADDRESS)``, ``kb ingest --ray``). ``RayPipeline``
is the local ``Pipeline`` with its two heavy steps moved onto Ray (docs/SCALING.md):

- the driver (this process) lists the files and pre-checks them against the store exactly as
  a local ingest does (unchanged, duplicate, size, hash);
- each remaining PDF is parsed by a Ray task that runs the local capped parser
  (``ingest.workers.parse_many`` with one worker), so the time and memory caps and the error
  lines are the local ones;
- the parsed documents are embedded by a pool of Ray actors (Ray Data ``map_batches``), each
  loading the encoders once (one GPU each when the cluster has GPUs and KB_DEVICE=cuda);
- the outcomes stream back here in input order, and the driver alone writes to the store
  through ``Pipeline``'s own placing, duplicate checks and storing, with the actors' vectors.
  A killed run is resumed by running it again: stored files are skipped as unchanged.

JSONL record files are embedded here, as in a local ingest. Ray is an optional extra
(``pip install -e '.[ray]'``), imported only when a Ray ingest starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import pickle
import socket
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.embedder import Embedder, load_embedder
from ingest.workers import Parse, ParseJob, ParseOutcome, parse_job, parse_many
from kb.errors import KBError, RayUnavailable
from kb.library.encoders import passage_texts, second_encoder
from kb.library.ingest import Ingester, Listener, Pipeline, close
from kb.settings import Settings, cpu_count
from kb.types import ParsedDocument

EncoderFactory = Callable[[], list[Embedder]]
INSTALL_HINT = "pip install -e '.[ray]'"
LOCAL_OBJECT_STORE_MB = 256  # a local Ray's shared memory: parsed text and vectors in flight
DOCS_PER_EMBED_BATCH = 4  # parsed files embedded together by one actor call
CPUS_PER_EMBED_ACTOR = 8  # without GPUs: one embedding actor per this many cluster CPUs
REACH_TIMEOUT_S = 5.0  # a Ray head that does not accept a connection in this time is down


@dataclass(frozen=True)
class RayPlan:
    """Where and how an ingest runs on Ray.

    Args:
        address: ``local`` (a Ray started for this ingest), ``auto`` (the cluster this machine
            joined with ``ray start``), or ``host:port`` / ``ray://host:port`` of a head.
        encoders: builds each actor's encoders, in the library's order (picklable); None:
            the encoders of the library's settings (``load_encoders``).
        parse: the function each parse task runs on a job (picklable; default: kb's parser).
        actors: embedding actors; None: one per GPU, else one per CPUS_PER_EMBED_ACTOR CPUs.
    """

    address: str = "local"
    encoders: EncoderFactory | None = None
    parse: Parse = parse_job
    actors: int | None = None


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or RayUnavailable saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data needs pyarrow, which plain ray lacks
    except ImportError as e:
        raise RayUnavailable(
            f"--ray needs Ray, which is not installed here ({e.name or e}): {INSTALL_HINT}, "
            "or ingest without --ray."
        ) from e
    return ray


def load_encoders(settings: Settings) -> list[Embedder]:
    """The encoders of ``settings`` in a library's order: the main model, then the second."""
    second = second_encoder(settings)
    return [load_embedder(settings), *([second] if second is not None else [])]


def ray_pipeline(plan: RayPlan) -> Callable[..., Pipeline]:
    """The pipeline factory of ``Ingester.ingest`` for an ingest on Ray."""
    require_ray()  # before any work: a missing Ray is one line, not a failure per file
    return functools.partial(RayPipeline, plan=plan)


class RayPipeline(Pipeline):
    """A ``Pipeline`` whose PDFs are parsed and embedded on Ray; it stores as its parent."""

    def __init__(
        self,
        ingester: Ingester,
        notify: Listener,
        *,
        ocr: bool = False,
        targets: dict[Path, int] | None = None,
        plan: RayPlan,
    ) -> None:
        super().__init__(ingester, notify, ocr=ocr, targets=targets)
        self.plan = plan
        # id(doc) -> (doc, its vectors per encoder, the encoders' fingerprints)
        self._vectors: dict[int, tuple[ParsedDocument, list[np.ndarray], str]] = {}

    def run_pdfs(self, pdfs: list[Path]) -> None:
        """Pre-check here, parse and embed on Ray, store here in input order."""
        known, jobs = self.prechecked(pdfs)
        if not jobs:  # nothing new (a resumed run that had finished): no cluster needed
            self.flush()
            return
        with connected(self.plan.address) as ray:
            self.consume(self._outcomes(ray, jobs), known)

    def _outcomes(self, ray: Any, jobs: list[ParseJob]) -> Iterator[ParseOutcome]:
        """The parse outcomes in job order, their vectors kept for ``embed``."""
        dataset = self._dataset(ray, jobs)
        for row in in_order(dataset.iter_rows(), len(jobs)):
            outcome = _as_given(pickle.loads(row["outcome"]), jobs[int(row["i"])])
            if outcome.doc is not None:
                vecs = pickle.loads(row["vecs"])
                self._vectors[id(outcome.doc)] = (outcome.doc, vecs, str(row["encoders"]))
            yield outcome

    def _dataset(self, ray: Any, jobs: list[ParseJob]) -> Any:
        """The Ray Data pipeline: one parse task per file, then the embedding actors."""
        settings = self.core.settings
        with warnings.catch_warnings():
            # On 2026-12-06 with ray==2.60.0, creating the DataContext warns that its own
            # default `use_push_based_shuffle` is deprecated (ray/data/context.py __setattr__)
            warnings.simplefilter("ignore", DeprecationWarning)
            context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # kb's own bar shows the progress
        context.execution_options.preserve_order = True
        # a worker reads a file by its absolute path (its working folder is not this one's)
        absolute = [dataclasses.replace(job, path=job.path.absolute()) for job in jobs]
        rows = [{"i": i, "job": pickle.dumps(job)} for i, job in enumerate(absolute)]
        parsed = ray.data.from_items(rows, override_num_blocks=len(rows)).map(
            _parse_row,
            fn_kwargs={
                "timeout_s": self.parse_timeout_s(),
                "memory_mb": settings.parse_memory_mb,
                "parse": self.plan.parse,
            },
            num_cpus=1,
            # the scheduler places a task where its memory cap fits; and, its resources
            # differing from the actors', Ray Data runs it as a task of its own instead of
            # fusing it into the actors (where files would be parsed one actor at a time)
            memory=settings.parse_memory_mb << 20,
        )
        actors, gpus = self._actors(ray)
        factory = self.plan.encoders or functools.partial(load_encoders, settings)
        return parsed.map_batches(
            EmbedActor,
            fn_constructor_args=(factory,),
            batch_size=DOCS_PER_EMBED_BATCH,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            num_gpus=gpus,
        )

    def _actors(self, ray: Any) -> tuple[int, float]:
        """(embedding actors, GPUs per actor) for the cluster's resources."""
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpus and self.core.settings.device != "cpu":
            return self.plan.actors or gpus, 1.0
        cpus = int(resources.get("CPU", 1))
        return self.plan.actors or max(1, cpus // CPUS_PER_EMBED_ACTOR), 0.0

    def embed(self, docs: list[ParsedDocument]) -> list[np.ndarray]:
        """The actors' vectors of ``docs`` (JSONL records, not sent to Ray, are embedded here)."""
        if not docs or any(id(d) not in self._vectors for d in docs):
            return super().embed(docs)
        found = [self._vectors.pop(id(d)) for d in docs]
        with self.core.lock:
            sides = self.core.encoders()
        ours = ",".join(side.embedder.fingerprint for side in sides)
        theirs = {fingerprints for _, _, fingerprints in found}
        if theirs != {ours}:
            raise KBError(
                f"The Ray actors embedded with other encoders ({', '.join(sorted(theirs))}) "
                f"than the library's ({ours}). Give the cluster the same KB_MODEL, "
                "KB_EMBED_BACKEND and KB_SECOND_ENCODER as this library."
            )
        self.core.save_indexes_if_due()
        return [np.concatenate([vecs[k] for _, vecs, _ in found]) for k in range(len(sides))]


@contextlib.contextmanager
def connected(address: str) -> Iterator[Any]:
    """Ray, connected to ``address`` (started here for ``local``) for the block.

    A Ray this process already runs (``ray.init`` by the caller) is used as it is; a Ray
    that kb started or joined is shut down at the end.
    """
    ray = require_ray()
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # kb's bar and report say it all
    if ray.is_initialized():
        yield ray
        return
    _check_reachable(address)
    try:
        ray.init(**_init_args(address))
    except (ConnectionError, RuntimeError, ValueError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise RayUnavailable(
            f"Cannot start or join Ray at {address!r} ({reason}). Start a cluster with "
            "`ray start --head`, or ingest with --ray local."
        ) from e
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """RayUnavailable, at once, when a ``host:port`` head does not answer: ``ray.init`` would
    retry for minutes (ray 2.60.0, 2026-12-06: over 2 min 30 s for a closed port)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():  # local, auto: Ray says itself, at once
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S):
            pass
    except OSError as e:
        raise RayUnavailable(
            f"Cannot reach a Ray head at {address!r} ({e.strerror or e}). Check the address "
            "and that `ray start --head` runs there, or ingest with --ray local."
        ) from None


def _init_args(address: str) -> dict[str, Any]:
    """``ray.init``'s arguments: a small, quiet local Ray, or a quiet member of a cluster."""
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address != "local":
        return {"address": address, **quiet}
    return {
        "address": "local",
        "num_cpus": cpu_count(),
        "include_dashboard": False,
        "object_store_memory": LOCAL_OBJECT_STORE_MB << 20,
        **quiet,
    }


def _as_given(outcome: ParseOutcome, job: ParseJob) -> ParseOutcome:
    """The outcome as a local parse of ``job`` gives it: the task read the file by its
    absolute path, a local ingest by the path as given (the paper's ``source``)."""
    doc = outcome.doc
    if doc is not None:
        doc = dataclasses.replace(doc, source=str(job.path))
    return dataclasses.replace(outcome, job=job, doc=doc)


def in_order(rows: Iterable[dict[str, Any]], total: int) -> Iterator[dict[str, Any]]:
    """``rows`` (each with its input number ``i``) in input order, each once; KBError when
    the pipeline ended without some of them."""
    waiting: dict[int, dict[str, Any]] = {}
    expected = 0
    for row in rows:
        number = int(row["i"])
        if number >= expected:
            waiting[number] = row
        while expected in waiting:
            yield waiting.pop(expected)
            expected += 1
    if expected < total:
        raise KBError(
            f"The Ray pipeline ended with {total - expected} of {total} files missing; what was "
            "stored stays. Run the same command again to ingest the rest."
        )


# ---------------------------------------------------------------- run on the Ray workers


def _parse_row(
    row: dict[str, Any], *, timeout_s: float, memory_mb: int, parse: Parse
) -> dict[str, Any]:
    """A parse task: one file through kb's capped parser, exactly as a local ingest parses."""
    job: ParseJob = pickle.loads(row["job"])
    outcomes = parse_many([job], workers=1, timeout_s=timeout_s, memory_mb=memory_mb, parse=parse)
    try:
        outcome = next(outcomes)
    finally:
        close(outcomes)
    return {"i": row["i"], "outcome": pickle.dumps(outcome)}


class EmbedActor:
    """An embedding actor: loads the encoders once, then embeds batches of parsed files."""

    def __init__(self, factory: EncoderFactory) -> None:
        self.encoders = factory()
        self.fingerprints = ",".join(e.fingerprint for e in self.encoders)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        outcomes: list[ParseOutcome] = [pickle.loads(b) for b in batch["outcome"]]
        texts = passage_texts([o.doc for o in outcomes if o.doc is not None])
        # each encoder batches the texts by length itself, as in a local ingest
        embedded = [encoder.encode(texts, kind="passage") for encoder in self.encoders]
        vecs, start = [], 0
        for outcome in outcomes:
            end = start + (len(outcome.doc.chunks) if outcome.doc is not None else 0)
            vecs.append(pickle.dumps([v[start:end] for v in embedded]))
            start = end
        return {
            "i": batch["i"],
            "outcome": batch["outcome"],
            "vecs": vecs,
            "encoders": [self.fingerprints] * len(outcomes),
        }
