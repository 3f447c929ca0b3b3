"""A stand-in for PSOP, the voucher and purchased-service system: a small HTTP service
with its own SQLite storage, so the adapter is exercised over real HTTP.

The vendor publishes no API; this one is ours and README.md documents it. What it keeps
from PSOP as the trial used it:

* a *balance voucher* (saldoseteli) per client and month lists the services in the budget
  with a money value each, the validity, and the providers approved for each service;
* a provider records a service event (voucher, provider, date, service, units, unit
  price); one beyond what is left of that service line, outside the validity, for a
  service not on the voucher or by a provider not approved for it is refused at once,
  with the reason — overuse is impossible, because recorded events count against what is
  left before they are booked;
* the balance updates in a daily batch: the run of day D books the events recorded before
  D, so an event shows in the balance by the next day.

Start it with ``avain psop simulator serve --port N [--data FILE]`` (127.0.0.1 only), or
in-process with :meth:`Simulator.start` (tests use port 0).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .store import MAX_PAGE, Problem, Store, as_date

HOST = "127.0.0.1"

# --- HTTP ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as exc:
            raise Problem(400, f"the body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise Problem(400, "the body must be a JSON object")
        return data

    def _route(self, method: str) -> None:
        sim = self.server.simulator
        if sim.down:  # a crashed service: the connection drops, no answer
            self.close_connection = True
            return
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        store = sim.store
        try:
            if method == "GET" and parts == ["health"]:
                self._send(200, {"ok": True, "today": store.today().isoformat()})
            elif method == "PUT" and len(parts) == 2 and parts[0] == "vouchers":
                self._send(*store.put_voucher(parts[1], self._body()))
            elif method == "GET" and len(parts) == 2 and parts[0] == "vouchers":
                self._send(200, store.voucher(parts[1]))
            elif method == "POST" and parts == ["events"]:
                self._send(*store.record_event(self._body()))
            elif method == "POST" and parts == ["batch", "run"]:
                day = as_date(query["date"], "date") if "date" in query else store.today()
                self._send(200, store.run_batch(day))
            elif method == "GET" and parts == ["events"]:
                try:
                    since, limit = int(query.get("since", 0)), int(query.get("limit", 1000))
                except ValueError as exc:
                    raise Problem(400, "since and limit are whole numbers") from exc
                if not 1 <= limit <= MAX_PAGE:
                    raise Problem(400, f"limit: 1–{MAX_PAGE}")
                page = store.events(since=since, period=query.get("period"), status=query.get("status"),
                                    prefix=query.get("prefix"), limit=limit)
                self._send(200, page)
                sim.pages_served += 1
                if sim.die_after_pages is not None and sim.pages_served >= sim.die_after_pages:
                    sim.crash()
            else:
                self._send(404, {"error": f"no route {method} {url.path}"})
        except Problem as exc:
            self._send(exc.status, {"error": str(exc)})

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self._route("GET")

    def do_PUT(self):  # noqa: N802
        self._route("PUT")

    def do_POST(self):  # noqa: N802
        self._route("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: Simulator
    verbose = False


class Simulator:
    """The simulator: storage plus an HTTP server on 127.0.0.1.

    ``die_after_pages`` makes it crash (drop every later connection) after serving that
    many pages of ``GET /events`` — how tests take the service down mid-import."""

    def __init__(self, port: int = 0, data: str = ":memory:", today: dt.date | None = None,
                 verbose: bool = False):
        self.store = Store(data, (lambda: today) if today else dt.date.today)
        self.httpd = _Server((HOST, port), _Handler)
        self.httpd.simulator = self
        self.httpd.verbose = verbose
        self.thread: threading.Thread | None = None
        self.down = False
        self.pages_served = 0
        self.die_after_pages: int | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @classmethod
    def start(cls, port: int = 0, data: str = ":memory:", **kw) -> Simulator:
        """Serve in a background thread (port 0: any free port; see :attr:`url`)."""
        sim = cls(port, data, **kw)
        sim.thread = threading.Thread(target=sim.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                      name="psop-simulator", daemon=True)
        sim.thread.start()
        return sim

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def crash(self) -> None:
        """Go down as a crashed service would: answer nothing from now on."""
        self.down = True

    def stop(self) -> None:
        self.down = True
        if self.thread is not None:
            self.httpd.shutdown()
            self.thread.join(timeout=5)
        self.httpd.server_close()
        self.store.close()
