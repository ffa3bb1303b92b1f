"""The store's commands: ``rudder view [STORE]`` and ``rudder export RUN OUT.html``.

A bad argument (no such store, no such run, a busy port) is a message on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import TYPE_CHECKING

from rudder.errors import StoreError

if TYPE_CHECKING:
    from rudder.store._explore import StoredExplorer
    from rudder.store._store import Store

#: ``--model`` for rudder's built-in model.
BUILTIN = "builtin"
STORE_HELP = (
    "the store file (default: rudder.settings.store as RUDDER_STORE sets it, else the "
    "per-user store)"
)


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", nargs="?", metavar="STORE", help=STORE_HELP)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1; any other address puts a random "
        "token in the URL)",
    )
    parser.add_argument("--port", type=int, default=8477, help="the port (default: 8477; 0: any)")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    parser.add_argument(
        "--model",
        metavar="PATH_OR_ID",
        help="the model the runs used, to explore their generations from any token: a Hugging "
        "Face causal LM (a local folder or a hub id already in the local cache), a .gguf file, "
        f"or {BUILTIN!r} for rudder's built-in model (default: none, nothing to explore with)",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... for --model (default: auto)")


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="the run: its id, a prefix of it, or its name")
    parser.add_argument("out", metavar="OUT.html", help="the page to write")
    parser.add_argument("--store", metavar="STORE", help=STORE_HELP)


def store_path(given: str | None) -> pathlib.Path:
    if given is not None:
        return pathlib.Path(given).expanduser()
    from rudder._settings import settings
    from rudder.store._store import default_path

    return settings.store or default_path()


def view(args: argparse.Namespace) -> int:
    from rudder._demo import DemoError
    from rudder.store._server import ViewServer
    from rudder.store._store import Store

    try:
        store = Store(store_path(args.store), create=False)
        explorer = _explorer(store, args.model, args.device)
        server = ViewServer(store, host=args.host, port=args.port, explorer=explorer)
    except (StoreError, DemoError) as error:
        print(f"rudder view: {error}", file=sys.stderr)
        return 2
    model = "" if args.model is None else f", exploring on {args.model}"
    print(f"rudder view: {store.path} at {server.url}{model} (Ctrl-C stops)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    _stop_on_signals()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        store.close()
    return 0


def _explorer(store: Store, model: str | None, device: str | None) -> StoredExplorer | None:
    """What explores the store's generations on ``--model`` (None without one)."""
    if model is None:
        return None
    from rudder._demo import load_model
    from rudder.store._explore import StoredExplorer

    return StoredExplorer(store, load_model(None if model == BUILTIN else model, device=device))


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the server cleanly, also when the process was started with
    SIGINT ignored (as a shell does for a background job, where Python sets no handler)."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def export(args: argparse.Namespace) -> int:
    from rudder.store._store import Store
    from rudder.visual.html._export import write_page
    from rudder.visual.html._page import client_page

    try:
        with Store(store_path(args.store), create=False) as store:
            summary = store.resolve(args.run)
            bodies = store.messages_json(summary.id)
        page = client_page("[" + ",".join(bodies) + "]", title=f"{summary.name} · rudder")
        target = write_page(page, args.out)
    except (StoreError, OSError) as error:
        print(f"rudder export: {error}", file=sys.stderr)
        return 2
    print(f"rudder export: run {summary.name!r} ({summary.id}) written to {target}")
    return 0
