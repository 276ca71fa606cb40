"""The ``kb`` command line: the one place click is imported."""

from kb.cli.main import cli, main

__all__ = ["cli", "main"]
