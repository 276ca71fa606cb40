"""The health check: open even when reads need a key, so a load balancer can call it."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import JobsDep, LibraryDep, SettingsDep
from api.schemas import Health

router = APIRouter(tags=["meta"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(lib: LibraryDep, runner: JobsDep, settings: SettingsDep, response: Response) -> Health:
    """``ok``; ``degraded`` (200: answering, ``problems`` says what is wrong); ``error`` (503:
    the store cannot be read)."""
    health = lib.health()
    if not runner.alive() and not settings.read_only:  # a read replica runs no jobs
        health["problems"].append("the ingest job worker has stopped: restart the server")
        health["status"] = "degraded" if health["status"] == "ok" else health["status"]
    if health["status"] == "error":
        response.status_code = 503
    return Health.model_validate(health)
