"""Request and response models of the collection and export routes (they appear in /docs)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import PaperSummary
from kb.library.collections import MAX_NAME, MAX_TEXT


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME, description="Unique, ignoring case")
    description: str = Field("", max_length=MAX_TEXT)


class CollectionUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME, description="A new name")
    description: str | None = Field(None, max_length=MAX_TEXT, description="A new description")


class NoteIn(BaseModel):
    note: str | None = Field(
        None,
        max_length=MAX_TEXT,
        description='The group\'s note on the paper; null or absent keeps the note, "" clears it',
    )


class CollectionItemPublic(BaseModel):
    paper: PaperSummary
    note: str
    added_at: str


class CollectionPublic(BaseModel):
    id: int
    name: str
    description: str
    created_at: str
    updated_at: str
    items: list[CollectionItemPublic] = Field(description="Its papers, oldest addition first")


class CollectionList(BaseModel):
    total: int
    collections: list[CollectionPublic] = Field(description="Every collection, by name")


class MembershipPublic(BaseModel):
    collection_id: int
    name: str
    note: str


class PaperCollections(BaseModel):
    paper_id: int
    collections: list[MembershipPublic] = Field(description="Collections the paper is in")
