"""The health check: open even when reads need a key, so a load balancer can call it."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import LibraryDep
from api.schemas import Health

router = APIRouter(tags=["meta"])


@router.get("/healthz", response_model=Health)
def healthz(lib: LibraryDep) -> Health:
    stats = lib.stats()
    return Health(status="ok", papers=stats["papers"], chunks=stats["chunks"], model=stats["model"])
