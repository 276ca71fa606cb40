"""HTTP routes for papers: each a thin wrapper of one Library call."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from api.auth import WriteAccess
from api.deps import (
    AuthorQuery,
    JobsDep,
    LangQuery,
    LibraryDep,
    PaperId,
    SortParam,
    YearQuery,
    finished_job,
)
from api.errors import error_responses
from api.schemas import OCR_HELP, PaperEdit, PaperList, PaperPublic, SearchResultPublic
from kb.errors import IngestError
from kb.library.jobs import JobFile
from kb.types import Paper

CLEARABLE = ("abstract", "doi", "arxiv_id", "url", "title_en")

router = APIRouter(prefix="/api/papers", tags=["papers"])


def _public(paper: Paper) -> PaperPublic:
    return PaperPublic.model_validate(paper.to_dict())


@router.get("", response_model=PaperList)
def list_papers(
    lib: LibraryDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    lang: LangQuery = None,
    year_from: YearQuery = None,
    year_to: YearQuery = None,
    tag: Annotated[str | None, Query(max_length=100, description="Exact tag")] = None,
    author: AuthorQuery = None,
    q: Annotated[str | None, Query(max_length=200, description="Title or author substring")] = None,
    sort: Annotated[
        SortParam, Query(description="added (newest first), year (newest first) or title")
    ] = "added",
) -> PaperList:
    filters = {"year_from": year_from, "year_to": year_to, "tag": tag, "author": author, "q": q}
    papers = lib.papers(limit=limit, offset=offset, lang=lang, sort=sort, **filters)
    return PaperList(
        total=lib.count(lang, **filters),
        limit=limit,
        offset=offset,
        papers=[_public(p) for p in papers],
    )


@router.post(
    "",
    response_model=PaperPublic,
    status_code=201,
    dependencies=[WriteAccess],
    responses={
        200: {"model": PaperPublic, "description": "The library already had it: that paper"},
        **error_responses(401, 403, 413, 415, 422, 503),
    },
)
async def upload_paper(
    lib: LibraryDep,
    runner: JobsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="One PDF, at most KB_UPLOAD_MAX_MB")],
    ocr: Annotated[bool, Form(description=OCR_HELP)] = False,
) -> PaperPublic:
    """Upload one PDF and ingest it: 201 with the new paper, 200 with an existing one.

    It waits its turn in the ingest queue (an ingest job) without holding a server thread;
    503 with Retry-After when the queue is full.
    """
    name = file.filename or "upload.pdf"
    runner.ensure_room()
    path = await run_in_threadpool(lib.keep_upload, file.file, name)
    job = await finished_job(runner, [JobFile(name, path)], ocr=ocr)
    done = job["files"][0]
    if done["status"] == "failed" or done["paper_id"] is None:
        await run_in_threadpool(lib.discard_upload, path)
        raise IngestError(f"{name!r} could not be ingested: {done['detail'] or job['error']}")
    if done["status"] in ("duplicate", "skipped", "updated"):  # updated: read again (ocr)
        response.status_code = 200
    return _public(await run_in_threadpool(lib.paper, done["paper_id"]))


@router.get("/{paper_id}", response_model=PaperPublic)
def get_paper(lib: LibraryDep, paper_id: PaperId) -> PaperPublic:
    return _public(lib.paper(paper_id))


@router.patch(
    "/{paper_id}",
    response_model=PaperPublic,
    dependencies=[WriteAccess],
    responses=error_responses(401, 403, 404),
)
def edit_paper(lib: LibraryDep, paper_id: PaperId, body: PaperEdit) -> PaperPublic:
    """Correct metadata (kept on re-ingest) and add or remove tags."""
    fields = body.model_dump(exclude_unset=True, exclude={"tags_add", "tags_remove"})
    fields = {k: ("" if v is None and k in CLEARABLE else v) for k, v in fields.items()}
    fields = {k: v for k, v in fields.items() if v is not None}
    paper = lib.update_paper(paper_id, fields, add_tags=body.tags_add, remove_tags=body.tags_remove)
    return _public(paper)


@router.delete(
    "/{paper_id}",
    status_code=204,
    dependencies=[WriteAccess],
    responses=error_responses(401, 403, 404),
)
def delete_paper(lib: LibraryDep, paper_id: PaperId) -> Response:
    """Delete a paper, its chunks and its uploaded copy (files outside kb stay)."""
    lib.remove(paper_id)
    return Response(status_code=204)


@router.get(
    "/{paper_id}/pdf",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
        **error_responses(404),
    },
)
def paper_pdf(lib: LibraryDep, paper_id: PaperId) -> FileResponse:
    """The paper's PDF, shown inline: ``/api/papers/{id}/pdf#page=N`` opens at page N."""
    path = lib.pdf_path(paper_id)
    name = _filename(lib.paper(paper_id))
    return FileResponse(
        path, media_type="application/pdf", filename=name, content_disposition_type="inline"
    )


@router.get("/{paper_id}/related", response_model=SearchResultPublic)
def related_papers(
    lib: LibraryDep, paper_id: PaperId, k: Annotated[int, Query(ge=1, le=100)] = 10
) -> SearchResultPublic:
    return SearchResultPublic.model_validate(lib.related(paper_id, k=k).to_dict())


def _filename(paper: Paper) -> str:
    """A download name from the title: letters, digits (any script), '-' and '_' only."""
    stem = re.sub(r"[^\w-]+", "_", paper.title, flags=re.UNICODE).strip("_")[:80]
    return f"{stem or f'paper-{paper.id}'}.pdf"
