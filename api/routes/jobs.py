"""HTTP routes for ingest jobs: each a thin wrapper of one JobRunner call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile

from api.auth import WriteAccess
from api.routes.search import LibraryDep
from api.schemas import ErrorPublic, JobList, JobPublic
from kb.errors import InvalidInput, NotFound
from kb.library.jobs import JobFile, JobRunner, folder_files, upload_files

router = APIRouter(prefix="/api/ingest-jobs", tags=["ingest jobs"])


def _runner(request: Request) -> JobRunner:
    return request.state.jobs


RunnerDep = Annotated[JobRunner, Depends(_runner)]
JobId = Annotated[str, Path(min_length=1, max_length=64, description="A job's id")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorPublic} for code in codes}


@router.post(
    "",
    response_model=JobPublic,
    status_code=202,
    dependencies=[WriteAccess],
    responses=_errors(401, 403, 404, 413),
)
def create_job(
    request: Request,
    lib: LibraryDep,
    runner: RunnerDep,
    files: Annotated[list[UploadFile] | None, File(description="PDFs to ingest")] = None,
    folder: Annotated[
        str | None,
        Form(max_length=4096, description="A server folder inside KB_IMPORT_ROOTS"),
    ] = None,
) -> JobPublic:
    """Queue PDFs (uploaded, and/or a server folder's) for ingest; poll the job for progress."""
    if not files and not folder:
        raise InvalidInput("Give PDFs in files, or a server folder in folder.")
    todo: list[JobFile] = []
    if folder:
        todo += folder_files(folder, request.state.settings.import_root_paths)
    todo += upload_files(lib, [(f.filename or "upload.pdf", f.file) for f in files or []])
    return JobPublic.model_validate(runner.submit(todo))


@router.get("", response_model=JobList)
def list_jobs(runner: RunnerDep) -> JobList:
    return JobList.model_validate({"jobs": runner.jobs()})


@router.get("/{job_id}", response_model=JobPublic, responses=_errors(404))
def get_job(runner: RunnerDep, job_id: JobId) -> JobPublic:
    job = runner.get(job_id)
    if job is None:
        raise NotFound(f"No ingest job {job_id!r} (the last 100 jobs are kept).")
    return JobPublic.model_validate(job)
