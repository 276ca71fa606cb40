"""HTTP routes for collections: each a thin wrapper of one Library call."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
