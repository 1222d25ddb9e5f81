"""`mediafind mcp`: the command an assistant starts to search the library.

Registered on the app of `cli_base` (cli.py imports this module so that
the command exists); like every command
it parses, calls the library (mediafind.mcp_server) and words what it says.
Its stdout is the protocol's: nothing else may be printed there.
"""

from __future__ import annotations

import contextlib

from mediafind import config
from mediafind.cli_base import (
    DbOption,
    DeviceOption,
    ModelChoices,
    SearchModels,
    app,
    exit_now,
    with_model_options,
)
from mediafind.errors import UsageError

INSTALL_HINT = "pip install 'mediafind[mcp]'"


@app.command()
@with_model_options()
def mcp(
    db: DbOption = None,
    device: DeviceOption = None,
    *,
    models: ModelChoices,
) -> None:
    """Let an assistant (Claude Desktop, an IDE agent) search the library: an MCP server
    on stdin and stdout, read-only, offline. Started by the assistant, not by hand."""
    try:
        from mediafind import mcp_server
    except ImportError as error:
        if (error.name or "").split(".")[0] not in ("mcp", "mcp_types"):
            raise
        raise UsageError(
            f"the MCP server needs the mcp package, not installed here; install it with: "
            f"{INSTALL_HINT}"
        ) from None
    from mediafind.db import Store
    from mediafind.library import Library, ModelsWhenNeeded

    chosen = SearchModels(db, models, device)
    path = config.resolve_db_path(db)
    with contextlib.ExitStack() as held:

        def open_library() -> Library:
            store = held.enter_context(Store.open(path, create=False, readonly=True))
            return Library(store, ModelsWhenNeeded(lambda: chosen.for_searching(store)))

        mcp_server.run(open_library)
        # The assistant closed stdin. The models may still be loading in the
        # warm-up thread, inside ONNX Runtime's or torch's C code, where
        # tearing the interpreter down under it can crash the process
        # (seen: SIGSEGV); the index is only read, so nothing is left unsaved.
        exit_now(0)
