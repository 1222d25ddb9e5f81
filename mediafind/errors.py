"""The exceptions mediafind raises.

Every error a user can cause or fix derives from `MediafindError`. Its message is
shown to the user as one line on stderr, so it says what went wrong and what to
do. The CLI maps these types to exit codes in one place (`cli.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediafind.index import IndexSummary


class MediafindError(Exception):
    """Base class: a problem the user can act on, described in one line.

    The library words its messages in its own terms: where a message names
    one of its arguments it writes `{argument}`, filled with the argument's
    name (`limit must be at least 1, got 0`). The command line fills it with
    the option the user typed instead (`--limit must be ...`); see `worded`.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        self.template = message
        self.argument = argument
        super().__init__(self.worded())

    def worded(self, name: str | None = None) -> str:
        """The message, naming the argument `name` (default: the library's own name)."""
        return self.template.replace("{argument}", name or self.argument or "")


class UsageError(MediafindError):
    """An argument or option that cannot work (empty query, missing folder)."""


class IndexNotFoundError(MediafindError):
    """No index file exists at the chosen path."""


class IndexEmptyError(MediafindError):
    """The index exists but holds nothing to search."""


class DatabaseError(MediafindError):
    """The index file cannot be opened, read, written or upgraded."""


class IndexBusyError(DatabaseError):
    """Another indexing run is writing to the same index."""


class ModelUnavailableError(MediafindError):
    """A model's weights cannot be found, downloaded or loaded."""


class ModelMismatchError(MediafindError):
    """The requested model differs from the one that made the stored vectors."""


class DeviceError(MediafindError):
    """The requested torch device is not available on this machine."""


class MediaError(MediafindError):
    """One file cannot be read or decoded; indexing records it and goes on."""


class IndexInterruptedError(MediafindError):
    """Indexing stopped on Ctrl-C or SIGTERM after committing finished files."""

    def __init__(self, summary: IndexSummary) -> None:
        super().__init__("indexing interrupted; run the same command again to continue")
        self.summary = summary
