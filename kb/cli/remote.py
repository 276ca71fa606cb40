"""Searches through a running ``kb serve``: its models are loaded, so the CLI answers at once.

``kb serve`` writes its address to ``server.json`` in the data folder while it runs
(``announce``). ``kb search``, ``kb related`` and ``kb export --query`` then ask it over HTTP
(``server_url``: ``KB_URL`` when set, else that file, if the process that wrote it is alive)
and load the models themselves only when no server answers. ``KB_URL=none`` never asks.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kb.errors import InvalidInput
from kb.settings import Settings

SERVER_FILE = "server.json"
NEVER = "none"
TIMEOUT_S = 120.0  # a search waits for a busy server (an ingest job embedding) this long


@contextmanager
def announce(settings: Settings, host: str, port: int) -> Iterator[Path]:
    """Record this process as the server of the data folder while the block runs.

    uvicorn stops gracefully on SIGTERM and then raises the signal again to the handler it
    found: that handler is set here to leave the block (SystemExit), so the record is removed
    when a service manager stops the server too (a stale record is ignored anyway: its
    process is gone)."""
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    path = settings.data_dir / SERVER_FILE
    info = {"url": f"http://{local}:{port}", "pid": os.getpid()}
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SERVER_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only data folder: the CLI will load the models itself
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    if main:
        signal.signal(signal.SIGTERM, _exit)
    try:
        yield path
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


def _exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def server_url(settings: Settings) -> str | None:
    """The URL of the kb server to ask, or None (load the models here)."""
    if settings.url:
        return None if settings.url.lower() == NEVER else settings.url.rstrip("/")
    try:
        info = json.loads((settings.data_dir / SERVER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    url, pid = info.get("url"), info.get("pid")
    if not isinstance(url, str) or not isinstance(pid, int) or not _alive(pid):
        return None
    return url.rstrip("/")


def ask_server(settings: Settings, params: dict[str, Any]) -> dict[str, Any] | None:
    """A search's answer (``SearchResponse.to_dict()``'s shape) from the running ``kb serve``
    of this data folder (or ``KB_URL``), or None: no server, or it did not answer (then
    said on stderr), so the caller searches here. ``k`` defaults to ``KB_SEARCH_K``."""
    url = server_url(settings)
    if url is None:
        return None
    answer = remote_search(url, {"k": settings.search_k, **params}, settings)
    if answer is None:
        print(f"no answer from the kb server at {url}; searching here", file=sys.stderr)
    return answer


def remote_search(url: str, params: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """``GET /api/search`` on the server: its JSON, or None when no server answered (or it
    refused this client: no key, another version), so the caller searches locally.

    Raises:
        InvalidInput: the server refused the query itself (a 400 or 422), with its message.
    """
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    request = urllib.request.Request(f"{url}/api/search?{query}")
    keys = settings.keys
    if keys:
        request.add_header("Authorization", f"Bearer {keys[0]}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        if e.code in (400, 422):
            raise InvalidInput(_message(e)) from e
        return None
    except (OSError, ValueError):  # refused, timed out, not JSON: not a kb server now
        return None
    return body if isinstance(body, dict) and "results" in body else None


def _message(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read().decode("utf-8"))
    except (OSError, ValueError):
        return f"The server refused the search ({error.code})."
    return str(body.get("error") or body.get("detail") or f"refused ({error.code})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
