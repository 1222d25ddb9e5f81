"""`mediafind serve`: the command that shows results in the browser.

Registered on the app of `cli_base` (cli.py imports this module so that
the command exists); like every command it parses, calls the library
(mediafind.serve) and words what it says.
"""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from mediafind import config
from mediafind.cli_base import (
    EXIT_INTERRUPTED,
    DbOption,
    DeviceOption,
    ModelChoices,
    SearchModels,
    app,
    exit_now,
    number_parser,
    with_model_options,
)


@app.command()
@with_model_options()
def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="Address to listen on; 0.0.0.0 lets other machines in (the token still guards).",
        ),
    ] = config.DEFAULT_SERVE_HOST,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            metavar="PORT",
            parser=number_parser(low=0, high=65535, whole=True),
            help="Port to listen on; 0: a free one.",
        ),
    ] = 0,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the page in the web browser.")
    ] = False,
    db: DbOption = None,
    device: DeviceOption = None,
    *,
    models: ModelChoices,
) -> None:
    """Show a results page in the browser: search, thumbnails, play videos from
    their moments. Private: this machine only, with a token in the printed URL."""
    from mediafind.db import Store
    from mediafind.output import stderr_line
    from mediafind.serve import Library, bind
    from mediafind.serve import serve as run_server

    chosen = SearchModels(db, models, device)
    with Store.open(config.resolve_db_path(db), create=False, readonly=True) as store:
        library = Library(store, chosen.for_searching(store))
        sock = bind(host, port)

        def ready(url: str) -> None:
            stderr_line(f"mediafind: results page at {url} (Ctrl-C stops)")
            if host not in ("127.0.0.1", "localhost", "::1"):
                stderr_line(
                    f"mediafind: warning: listening on {host}: other machines can reach "
                    "this page; only the token keeps them out"
                )
            threading.Thread(target=library.warm_up, daemon=True).start()
            if open_browser:
                threading.Thread(target=_open, args=(url,), daemon=True).start()

        run_server(library, sock, ready=ready, interrupted=lambda: exit_now(EXIT_INTERRUPTED))


# Seconds the page that opens the browser is kept: long enough for a browser
# that starts slowly; the token it holds dies with the server anyway.
OPENING_PAGE_SECONDS = 120


def _open(url: str) -> None:
    import shutil
    import webbrowser

    from mediafind.output import stderr_line
    from mediafind.serve import opening_page

    page = opening_page(url)
    if not webbrowser.open(page.as_uri()):
        stderr_line("mediafind: warning: no web browser found; open the address above by hand")
    remove = threading.Timer(OPENING_PAGE_SECONDS, shutil.rmtree, (page.parent, True))
    remove.daemon = True
    remove.start()
