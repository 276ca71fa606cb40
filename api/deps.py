"""What the routes share, defined once: the app's state as dependencies, and parameter types.

The state comes from the lifespan (``api.app.create_app``), never from module globals:
``def route(lib: LibraryDep)`` is handed the Library the app serves.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from kb.library import Library
from kb.library.jobs import JobFile, JobRunner
from kb.settings import Settings

MAX_ROWID = 2**63 - 1  # SQLite's largest row id: a larger id is a 422, not a server error


def get_library(request: Request) -> Library:
    """The Library the app serves."""
    library: Library = request.state.library
    return library


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.state.settings
    return settings


def get_jobs(request: Request) -> JobRunner:
    """The app's runner of ingest jobs."""
    jobs: JobRunner = request.state.jobs
    return jobs


LibraryDep = Annotated[Library, Depends(get_library)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]

LangParam = Literal["en", "zh", "any", "all"]
ModeParam = Literal["dense", "keyword", "hybrid"]
SortParam = Literal["added", "year", "title"]
FormatParam = Literal["bibtex", "ris", "csl-json"]

PaperId = Annotated[int, Path(ge=1, le=MAX_ROWID, description="A paper's id")]
JobId = Annotated[str, Path(min_length=1, max_length=64, description="A job's id")]

# query filters shared by search and the paper listing
LangQuery = Annotated[LangParam | None, Query(description="Only this language")]
YearQuery = Annotated[int | None, Query(ge=1000, le=3000)]
AuthorQuery = Annotated[str | None, Query(max_length=200, description="Author substring")]


async def finished_job(
    runner: JobRunner, files: list[JobFile], *, ocr: bool = False
) -> dict[str, Any]:
    """Queue ``files`` as one ingest job (``ocr``: OCR pages without usable text) and wait for
    its end without holding a thread: the worker thread resolves a future on this event loop
    when the job is done or failed."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[dict[str, Any]] = loop.create_future()

    def resolve(job: dict[str, Any]) -> None:
        if not ended.done():  # the client may have gone: the job still ran
            ended.set_result(job)

    def on_done(job: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(resolve, job)

    await run_in_threadpool(runner.submit, files, ocr=ocr, on_done=on_done)
    return await ended
