"""The `mediafind` command's first step: a search that a running service
can answer (`mediafind.warm`) is answered before typer, rich and the
command line are imported, since those imports are most of what a warm
answer would otherwise cost. Everything else goes on to `mediafind.cli`."""

from __future__ import annotations

import contextlib
import os
import sys

from mediafind import __version__, config


def main() -> None:
    answer_warm(sys.argv[1:])
    from mediafind.cli import main as run

    run()


def answer_warm(args: list[str]) -> None:
    """Print a running service's answer to a search and exit, when one gives
    it (`mediafind.warm`); else return, and the command runs here. Only into
    a pipe or a file: a terminal's table (pictures, links, its size) is
    drawn here. Not --verbose: its notes are about this process's models."""
    if not args or args[0] not in ("search", "similar") or sys.stdout.isatty():
        return
    if "--verbose" in args or "-v" in args or "--help" in args:
        return
    from mediafind import warm

    db = next((a.split("=", 1)[1] for a in args if a.startswith("--db=")), None)
    if "--db" in args and args.index("--db") + 1 < len(args):
        db = args[args.index("--db") + 1]
    env = dict(os.environ)
    # The width rich would find here, so the service draws the same table.
    env.setdefault("COLUMNS", str(_width()))
    answer = warm.ask(
        config.resolve_db_path(db),
        warm.Request(
            version=__version__,
            argv=args,
            cwd=os.getcwd(),
            env=env,
            encoding=sys.stdout.encoding,
            errors=sys.stdout.errors or "strict",
            stderr_tty=sys.stderr.isatty(),
        ),
    )
    if answer is None:
        return
    code = answer.code
    try:
        sys.stdout.buffer.write(answer.stdout)
        sys.stdout.flush()
        sys.stderr.buffer.write(answer.stderr)
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        code = code or 1
    os._exit(code)


def _width() -> int:
    for descriptor in (0, 1, 2):
        with contextlib.suppress(OSError):
            return os.get_terminal_size(descriptor).columns
    return 80  # rich's, where nothing says
