"""Library exchange: a ``.kbundle`` file carries papers, chunks, vectors and collections."""

from kb.bundle.export import export_bundle
from kb.bundle.importer import import_bundle

__all__ = ["export_bundle", "import_bundle"]
