"""HTTP routes for ingest jobs: each a thin wrapper of one JobRunner call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from api.auth import WriteAccess
from api.deps import JobId, JobsDep, LibraryDep, SettingsDep
from api.errors import error_responses
from api.schemas import OCR_HELP, JobList, JobPublic
from kb.errors import InvalidInput, NotFound
from kb.library.jobs import JobFile, folder_files, upload_files

router = APIRouter(prefix="/api/ingest-jobs", tags=["ingest jobs"])


@router.post(
    "",
    response_model=JobPublic,
    status_code=202,
    dependencies=[WriteAccess],
    responses=error_responses(401, 403, 404, 413, 503),
)
def create_job(
    settings: SettingsDep,
    lib: LibraryDep,
    runner: JobsDep,
    files: Annotated[list[UploadFile] | None, File(description="PDFs to ingest")] = None,
    folder: Annotated[
        str | None,
        Form(max_length=4096, description="A server folder inside KB_IMPORT_ROOTS"),
    ] = None,
    ocr: Annotated[bool, Form(description=OCR_HELP)] = False,
) -> JobPublic:
    """Queue PDFs (uploaded, and/or a server folder's) for ingest; poll the job for progress."""
    if not files and not folder:
        raise InvalidInput("Give PDFs in files, or a server folder in folder.")
    runner.ensure_room()  # 503 with Retry-After when the queue is full, before keeping files
    todo: list[JobFile] = []
    if folder:
        todo += folder_files(folder, settings.import_root_paths)
    todo += upload_files(
        lib.keep_upload, [(f.filename or "upload.pdf", f.file) for f in files or []]
    )
    return JobPublic.model_validate(runner.submit(todo, ocr=ocr))


@router.get("", response_model=JobList)
def list_jobs(runner: JobsDep) -> JobList:
    return JobList.model_validate({"jobs": runner.jobs()})


@router.get("/{job_id}", response_model=JobPublic, responses=error_responses(404))
def get_job(runner: JobsDep, job_id: JobId) -> JobPublic:
    job = runner.get(job_id)
    if job is None:
        raise NotFound(f"No ingest job {job_id!r} (the last 100 jobs are kept).")
    return JobPublic.model_validate(job)
