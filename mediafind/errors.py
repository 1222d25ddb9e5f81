"""The exceptions mediafind raises.

Every error a user can cause or fix derives from `MediafindError`. Its message is
shown to the user as one line on stderr, so it says what went wrong and what to
do. The CLI maps these types to exit codes in one place (`cli.py`).

This module imports nothing of mediafind: every other module may import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediafind.events import IndexSummary

_PLACEHOLDER = re.compile(r"\{(argument|[a-z_]+)\}")


class MediafindError(Exception):
    """Base class: a problem the user can act on, described in one line.

    The library words its messages in its own terms. Where a message names one
    of its arguments it writes the name in braces (`{limit} must be at least 1,
    got 0`, or `{argument}` for the one in `argument`), and the message reads
    with the library's names (`limit must be ...`). The command line words it
    with the options the user typed instead (`--limit must be ...`), see
    `worded`. Only names listed in `arguments` (and `argument`) are filled.
    """

    def __init__(
        self, message: str, *, argument: str | None = None, arguments: tuple[str, ...] = ()
    ) -> None:
        self.template = message
        self.argument = argument
        self.arguments = (*((argument,) if argument else ()), *arguments)
        super().__init__(self.worded())

    def worded(self, names: Mapping[str, str] | None = None) -> str:
        """The message with each argument named as `names` says (by default,
        as the library calls it)."""
        names = names or {}

        def fill(match: re.Match[str]) -> str:
            name = self.argument if match.group(1) == "argument" else match.group(1)
            if name is None or name not in self.arguments:
                return match.group(0)
            return names.get(name, name)

        return _PLACEHOLDER.sub(fill, self.template)


def one_line(error: BaseException) -> str:
    """Any exception as one short line: its words, or its type when it has none."""
    text = getattr(error, "strerror", None) or str(error)
    text = " ".join(str(text).split()) or error.__class__.__name__
    return text if len(text) <= 200 else text[:197] + "..."


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


class ClusterError(MediafindError):
    """The cluster asked for cannot be used: Ray is not installed, the cluster
    cannot be reached, or its workers cannot do the work as this machine would."""


class IndexInterruptedError(MediafindError):
    """Indexing stopped on Ctrl-C or SIGTERM after committing finished files."""

    def __init__(self, summary: IndexSummary) -> None:
        super().__init__("indexing interrupted; run the same command again to continue")
        self.summary = summary
