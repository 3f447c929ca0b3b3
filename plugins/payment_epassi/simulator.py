"""A local ePassi: the e-wallet service as a small HTTP server with its own SQLite file.

The adapter talks real HTTP to something that refuses what the real service would refuse
(the rules are in :mod:`.wallets`). The API is described in README.md. Run it in-process
(``Simulator(path).start()`` returns the port; ``stop()`` ends it) or as
``avain epassi simulator serve --port N``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .wallets import DEFAULT_PAGE_SIZE, Clock, ServiceRefusal, Wallets, check, helsinki_now, invalid

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "ePassi-simulator/1"

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines name wallets by phone number: never in the log.
        log.info("%s %s", self.address_string(), re.sub(r"/wallets/[^/\s?]+", "/wallets/…", format % args))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        w = self.server.wallets
        try:
            match method, parts:
                case "GET", ["health"]:
                    self._json(200, {"status": "ok", "instance": w.instance})
                case "GET", ["wallets"]:
                    self._json(200, {"wallets": w.wallets()})
                case "GET", ["wallets", phone]:
                    self._json(200, w.wallet(phone))
                case "PUT", ["wallets", phone]:
                    body = self._body()
                    self._json(200, w.load(phone, client_ref=body.get("client_ref"), period=body.get("period"),
                                           amount=body.get("amount"), rest=body.get("rest", "withdraw"),
                                           identity_check_required=body.get("identity_check_required", False)))
                case "POST", ["charges"]:
                    body = self._body()
                    self._json(201, w.charge(phone=body.get("phone"), provider=body.get("provider"),
                                             amount=body.get("amount"),
                                             identity_checked=body.get("identity_checked", False)))
                case "POST", ["charges", charge_id, "cancel"]:
                    result = w.cancel(charge_id)
                    self._json(200 if result["replayed"] else 201, result)
                case "GET", ["transactions"]:
                    limit = query.get("limit", str(self.server.page_size))
                    check(limit.isdigit() and 1 <= int(limit) <= 5000, "limit: 1–5000")
                    self._json(200, w.transactions(query.get("period", ""), after=query.get("after"),
                                                   limit=int(limit)))
                case "GET", ["transactions.csv"]:
                    self._send(200, w.transactions_csv(query.get("period", "")).encode(), "text/csv; charset=utf-8")
                case _:
                    self._json(404, {"error": "not-found", "message": f"no {method} {url.path}"})
        except ServiceRefusal as exc:
            self._json(exc.status, exc.body())
        except Exception:  # the service's own failure: a 500, as the real one would answer
            log.exception("ePassi simulator failed on %s %s", method, self.path)
            self._json(500, {"error": "internal", "message": "the service failed"})

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid("the body is not JSON") from exc
        if not isinstance(data, dict):
            raise invalid("the body must be a JSON object")
        return data

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], wallets: Wallets, page_size: int):
        self.wallets = wallets
        self.page_size = page_size
        super().__init__(address, _Handler)


class Simulator:
    """The service on 127.0.0.1. ``start()`` serves in a thread and returns the port (0
    picks a free one); ``stop()`` shuts it down and closes the file. ``clock`` gives the
    service's "now" (tests set it; by default the Finnish wall clock)."""

    def __init__(self, data: str | Path, *, port: int = 0, host: str = "127.0.0.1",
                 clock: Clock = helsinki_now, page_size: int = DEFAULT_PAGE_SIZE):
        self.data = Path(data)
        self.host, self.port = host, port
        self.clock = clock
        self.page_size = page_size
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _open(self) -> _Server:
        wallets = Wallets(self.data, clock=lambda: self.clock())
        try:
            server = _Server((self.host, self.port), wallets, self.page_size)
        except OSError:
            wallets.close()
            raise
        self.port = server.server_address[1]
        self._server = server
        return server

    def start(self) -> int:
        server = self._open()
        self._thread = threading.Thread(target=server.serve_forever, name=f"epassi-{self.port}",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.port

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in this thread until interrupted (the command line's way); ``ready`` is
        told the URL once the port is bound."""
        server = self._open()
        try:
            if ready is not None:
                ready(self.url)
            server.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    def _close(self) -> None:
        if self._server is not None:
            self._server.server_close()
            self._server.wallets.close()
            self._server = None

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
