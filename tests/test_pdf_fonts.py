"""ingest.pdf_fonts: the space width of composite fonts without a space glyph."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pypdf.generic._font import Font

from ingest import pdf_fonts


def font(**fields: object) -> SimpleNamespace:
    """A font as pypdf builds it for an Identity-H font whose glyph 32 is a "B"."""
    base: dict[str, object] = {
        "sub_type": "Type0",
        "space_char": " ",
        "character_map": {"\x00\x04": "A", " ": "B"},
        "character_widths": {" ": 752, "default": 587},
        "space_width": 752,
    }
    return SimpleNamespace(**(base | fields))


def test_a_composite_font_without_a_space_glyph_gets_half_its_default_width() -> None:
    found = font()
    pdf_fonts.fix_space_width(found)
    assert found.space_width == 293


@pytest.mark.parametrize(
    "fields",
    [
        {"sub_type": "TrueType"},  # a simple font's widths are its own
        {"space_char": "\x00\x03"},  # pypdf found the glyph that maps to a space
        {"character_map": {"\x00\x03": " ", " ": "B"}},
        {"character_widths": {"default": 587}},  # nothing at code 32: pypdf's default
        {"space_width": 250},  # narrower than half the default: only ever lowered
        {"character_widths": {" ": 752, "default": 0}},
    ],
)
def test_other_fonts_keep_their_space_width(fields: dict[str, object]) -> None:
    found = font(**fields)
    before = found.space_width
    pdf_fonts.fix_space_width(found)
    assert found.space_width == before


def test_install_wraps_pypdf_once() -> None:
    assert pdf_fonts.install()
    wrapped = Font.__dict__["from_font_resource"]
    assert pdf_fonts.install()
    assert Font.__dict__["from_font_resource"] is wrapped
