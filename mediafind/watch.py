"""`mediafind watch`'s library: keep the index current as files change.

The operating system's watcher (through watchdog: inotify, FSEvents,
ReadDirectoryChangesW) says which paths changed; this module decides when
each is ready and what to do with it. A path is looked at again on every
tick: a file is indexed once it has stayed the same size and mtime for
`settle` seconds (a copy in progress is waited for), and a path that is gone
is dropped, with every file under it when it was a folder. In a batch the
files that are there are indexed before those that are gone are dropped, so
a move is a path update (the index recognises moved content by its hash)
and never a second embedding. Pictures and sounds are written first; the
words pass (speech, text) runs after, a file at a time while no new file is
ready, so a long recording never holds back new photos.

Where events cannot be trusted (a network share, a folder past the inotify
watch limit, a gap after the machine slept) a root is rescanned on a
schedule by `index_paths`, the same stat-and-hash comparison `index` runs.
The writer lock is taken per batch, so other writers (forget, prune, roots
remove, --reembed) run between batches; a batch that finds the lock held
keeps its files waiting and tries again on the next tick.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mediafind import modalities
from mediafind.db import Store, WatchState, watch_paths
from mediafind.errors import IndexBusyError, UsageError
from mediafind.events import FileDone, IndexEvent, Problem
from mediafind.index import IndexOptions, forget_files, index_files, index_paths, passes
from mediafind.modalities import Model
from mediafind.scan import canonical_path, excluded, found_file, is_under, normalize_roots

# File systems that send no change events to this machine: each is rescanned.
UNWATCHABLE = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "afs", "fuse.rclone"}
)

INOTIFY_ADVICE = (
    "raise the limit: sudo sysctl fs.inotify.max_user_watches=524288 (and add "
    "fs.inotify.max_user_watches=524288 to /etc/sysctl.d/90-mediafind.conf to keep it)"
)


@dataclass
class WatchOptions:
    # Seconds a file must stay the same size and mtime before it is indexed.
    settle: float = 2.0
    # Seconds between rescans of roots whose events cannot be trusted.
    rescan_every: float = 300.0
    # Seconds between looks at the waiting files: the delay a change waits
    # beyond `settle`, and what the watcher costs when nothing changes.
    tick: float = 0.5
    # Rescan every root on the schedule instead of watching it (tests; a
    # file system whose events are known to be lost).
    polling: bool = False
    # A wall-clock gap this much longer than a tick means the machine slept
    # or the process was stopped: everything is rescanned.
    gap: float = 30.0
    index: IndexOptions = field(default_factory=IndexOptions)


@dataclass(frozen=True)
class WatchNote:
    """Something the watcher says once: a root rescanned instead of watched."""

    path: str
    message: str


class _Pending:
    """Paths with news from the watcher's thread, and when each last changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, float] = {}

    def add(self, path: str) -> None:
        with self._lock:
            self._paths[path] = time.monotonic()

    def take(self) -> dict[str, float]:
        with self._lock:
            taken, self._paths = self._paths, {}
        return taken

    def __len__(self) -> int:
        return len(self._paths)


class Watcher:
    """Keeps `store` current with the files under `roots` until `stop` is set
    (or Ctrl-C). `on_event` hears what indexing reports, `on_note` what the
    watcher itself says once."""

    def __init__(
        self,
        store: Store,
        roots: Sequence[str],
        models: Mapping[str, Model],
        options: WatchOptions | None = None,
        on_event: Callable[[IndexEvent], None] | None = None,
        on_note: Callable[[WatchNote], None] | None = None,
    ) -> None:
        self.store = store
        self.roots = normalize_roots(roots)
        if not self.roots:
            raise UsageError("no folder to watch; try: mediafind watch ~/Pictures")
        self.models = models
        chosen = [modality for modality in modalities.modalities() if modality.name in models]
        # Whether any modality reads words after the pictures and sounds.
        self.later = len(passes(chosen)) > 1
        self.options = options or WatchOptions()
        self.emit = on_event or (lambda event: None)
        self.note = on_note or (lambda note: None)
        self.pending = _Pending()
        # Path -> (monotonic time it last changed, its (size, mtime) then).
        self.looking: dict[str, tuple[float, tuple[int, int] | None]] = {}
        # Files whose pictures and sounds are written and whose words wait.
        self.words: dict[str, None] = {}
        self.rescanned: dict[str, float] = {}
        self.unwatched: set[str] = set()
        self.since = time.time()
        self.caught_up = False
        self.last_path: str | None = None
        self.last_at: float | None = None
        self._mark: Any = None
        self._saved = ""

    def run(self, stop: threading.Event) -> None:
        from watchdog.observers import Observer

        self._hold_mark()
        observer = Observer()
        handler = _Handler(self.pending)
        try:
            for root in self.roots:
                self._schedule(observer, handler, root)
            observer.start()
            self._catch_up()
            wall = time.time()
            while not stop.is_set():
                stop.wait(self.options.tick)
                now = time.time()
                if now - wall > self.options.tick + self.options.gap:
                    self._rescan(self.roots)
                wall = now
                self.step()
        finally:
            observer.stop()
            with contextlib.suppress(RuntimeError):
                observer.join(timeout=1.0)
            self._release_mark()

    def _schedule(self, observer: Any, handler: Any, root: str) -> None:
        fs_type = _mount_type(root)
        if self.options.polling or fs_type in UNWATCHABLE:
            why = (
                f"a {fs_type} share sends no change events"
                if fs_type in UNWATCHABLE
                else "polling asked for"
            )
            self._unwatched(root, f"{why}; rescanning it every {self.options.rescan_every:g} s")
            return
        try:
            observer.schedule(handler, root, recursive=True)
        except OSError as error:
            if error.errno == 28:  # ENOSPC from inotify_add_watch: past the limit
                self._unwatched(
                    root,
                    "too many folders for the system's inotify watch limit "
                    f"(fs.inotify.max_user_watches); rescanning it every "
                    f"{self.options.rescan_every:g} s; {INOTIFY_ADVICE}",
                )
            else:
                self._unwatched(
                    root,
                    f"cannot watch it ({error.strerror}); rescanning it every "
                    f"{self.options.rescan_every:g} s",
                )

    def _unwatched(self, root: str, message: str) -> None:
        self.unwatched.add(root)
        self.rescanned[root] = time.monotonic()
        self.note(WatchNote(root, message))

    def step(self) -> None:
        """One look: take the news, index what is ready, rescan what is due,
        and read one waiting file's words when nothing else waits."""
        for path, when in self.pending.take().items():
            self.looking[path] = (when, self.looking.get(path, (0.0, None))[1])
        if not self.caught_up:
            self._catch_up()
        if self.caught_up and (self.looking or self.unwatched):
            self._drop_removed_roots()
        ready, gone = self._ready()
        if ready or gone:
            self._write(ready, gone)
        due = [
            root
            for root in self.unwatched
            if time.monotonic() - self.rescanned[root] >= self.options.rescan_every
        ]
        if due:
            self._rescan(due)
        if not self.looking and not len(self.pending) and self.words:
            self._read_words()
        self._save_state()

    def _drop_removed_roots(self) -> None:
        """Stop watching the roots `roots remove` took out while this ran
        (each was remembered by the first rescan)."""
        remembered = {root.path for root in self.store.roots()}
        for root in [root for root in self.roots if root not in remembered]:
            self.roots.remove(root)
            self.unwatched.discard(root)
            self.note(WatchNote(root, "no longer a remembered folder; not watched any more"))

    def _ready(self) -> tuple[list[str], list[str]]:
        now = time.monotonic()
        ready: list[str] = []
        gone: list[str] = []
        # Forgotten while the watcher runs (`forget`, `roots remove`): left alone.
        forgotten = self.store.forgotten() if self.looking else []
        excludes = {root.path: root.excludes for root in self.store.roots()} if self.looking else {}
        for path, (changed, seen) in list(self.looking.items()):
            if self._skipped(path, excludes) or any(is_under(path, f) for f in forgotten):
                del self.looking[path]
                continue
            if os.path.isdir(path):
                # A folder made or moved in: its files came with it, unseen.
                del self.looking[path]
                for folder, _dirs, files in os.walk(path):
                    for name in files:
                        self.looking.setdefault(os.path.join(folder, name), (now, None))
                continue
            try:
                info = os.stat(path)
            except OSError:
                if now - changed >= self.options.settle:
                    gone.append(path)
                    del self.looking[path]
                continue
            current = (info.st_size, info.st_mtime_ns)
            if current != seen:
                self.looking[path] = (now, current)
            elif now - changed >= self.options.settle:
                ready.append(path)
                del self.looking[path]
        return ready, gone

    def _skipped(self, path: str, excludes: Mapping[str, Sequence[str]]) -> bool:
        """Whether a walk of its root would leave `path` out: hidden, or
        matching the config file's or its root's --exclude globs."""
        root = next((r for r in self.roots if is_under(path, r)), None)
        if root is None:
            return True
        given = self.options.index.excludes
        patterns = (*self.options.index.default_excludes, *(given or excludes.get(root, ())))
        if patterns and excluded(path, root, patterns):
            return True
        if self.options.index.include_hidden:
            return False
        relative = os.path.relpath(path, root)
        return any(part.startswith(".") for part in relative.split(os.sep))

    def _write(self, ready: list[str], gone: list[str]) -> None:
        files = [path for path in ready if found_file(path) is not None]
        try:
            if files:
                index_files(
                    self.store, files, self.models, self.options.index, self._heard, later=False
                )
                if self.later:
                    self.words.update(dict.fromkeys(files))
            if gone:
                self._forget(gone)
        except IndexBusyError:
            # Another writer (a long --reembed): the files wait for it.
            now = time.monotonic()
            for path in (*ready, *gone):
                self.looking.setdefault(path, (now - self.options.settle, None))

    def _forget(self, gone: list[str]) -> None:
        known = self.store.files_under([canonical_path(path) for path in gone])
        dropped = [path for path in known if not os.path.exists(path)]
        if dropped and forget_files(self.store, dropped):
            for path in dropped:
                self.words.pop(path, None)
                self._heard(FileDone(path, "removed"))

    def _read_words(self) -> None:
        path = next(iter(self.words))
        try:
            index_files(
                self.store, [path], self.models, self.options.index, self._heard, first=False
            )
        except IndexBusyError:
            return
        del self.words[path]

    def _catch_up(self) -> None:
        """Index the changes made while no watcher ran: the same comparison
        `index` makes. Until it has run (another writer held the lock), it
        is tried again on every tick."""
        self.caught_up = self._rescan(self.roots, first=True)
        self._save_state()

    def _rescan(self, roots: Sequence[str], *, first: bool = False) -> bool:
        """Whether the rescan ran (another writer may hold the lock)."""
        # A root forgotten while the watcher runs stays forgotten; naming one
        # to the watcher brings it back, as naming it to `index` does.
        forgotten = [] if first else self.store.forgotten()
        present = [
            root
            for root in roots
            if os.path.isdir(root) and not any(is_under(root, f) for f in forgotten)
        ]
        for root in roots:
            self.rescanned[root] = time.monotonic()
            if root not in present:
                self.emit(Problem(root, "not found (unmounted?); its files kept", "root"))
        if not present:
            return True
        try:
            index_paths(self.store, present, self.models, self.options.index, self._heard)
        except IndexBusyError:
            for root in present:
                self.rescanned[root] = 0.0
            return False
        return True

    def _heard(self, event: IndexEvent) -> None:
        if isinstance(event, FileDone) and event.outcome != "touched":
            self.last_path, self.last_at = event.path, time.time()
        self.emit(event)

    def state(self) -> WatchState:
        return WatchState(
            pid=os.getpid(),
            since=self.since,
            roots=list(self.roots),
            waiting=len(self.looking) + len(self.pending) + len(self.words),
            last_path=self.last_path,
            last_at=self.last_at,
            caught_up=self.caught_up,
        )

    def _hold_mark(self) -> None:
        """Say that this index is watched: a lock held while the watcher runs
        (other commands read it), its state in a file beside it."""
        mark, _ = watch_paths(self.store.path)
        try:
            import fcntl
        except ImportError:
            return
        handle = open(mark, "a+b")  # noqa: SIM115 (held until the watcher stops)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise IndexBusyError(
                f"another mediafind watch is keeping {self.store.path} current"
            ) from None
        self._mark = handle
        self._save_state()

    def _save_state(self) -> None:
        """Write the state when it changed: an idle watcher writes nothing."""
        if self._mark is None:
            return
        text = json.dumps(asdict(self.state()))
        if text == self._saved:
            return
        _, state = watch_paths(self.store.path)
        written = state.with_name(state.name + ".new")
        written.write_text(text, encoding="utf-8")
        os.replace(written, state)
        self._saved = text

    def _release_mark(self) -> None:
        if self._mark is None:
            return
        mark, state = watch_paths(self.store.path)
        for path in (state, mark):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._mark.close()
        self._mark = None


class _Handler:
    """watchdog's callbacks, on its thread: every path an event names is news."""

    def __init__(self, pending: _Pending) -> None:
        self.pending = pending

    def dispatch(self, event: Any) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.pending.add(os.fsdecode(raw))


def _mount_type(path: str) -> str | None:
    """The file-system type /proc/mounts gives for the mount holding `path`."""
    try:
        lines = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if is_under(path, point) and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind
