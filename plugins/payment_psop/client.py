"""The adapter's HTTP client for PSOP (stdlib ``urllib``; the API is in README.md).

Every failure to reach the service — refused connection, dropped connection, timeout, a
5xx answer — is :class:`PsopUnavailable`, with the service's address and what was being
done; the service's own refusals become avain's errors (404 NotFound, 409 Conflict, 400
ValidationError) with its message.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from avain.core.errors import Conflict, NotFound, ServiceUnavailable, ValidationError

PAGE = 5000


class PsopUnavailable(ServiceUnavailable):
    """PSOP cannot be reached, or broke off an answer."""


class PsopClient:
    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, *, body: Any = None, query: dict | None = None,
              doing: str) -> Any:
        url = self.url + path + (f"?{urlencode({k: v for k, v in query.items() if v is not None})}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except HTTPError as exc:
            message = _message(exc)
            if exc.code >= 500:
                raise PsopUnavailable(f"PSOP at {self.url} failed while {doing}: {exc.code} {message}") from exc
            kind = {404: NotFound, 409: Conflict}.get(exc.code, ValidationError)
            raise kind(f"PSOP refused {doing}: {message}") from exc
        except (TimeoutError, URLError, http.client.HTTPException, ConnectionError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc.__class__.__name__
            raise PsopUnavailable(f"PSOP at {self.url} is unreachable while {doing} ({reason})") from exc

    def health(self) -> dict:
        return self._call("GET", "/health", doing="checking its health")

    def put_voucher(self, voucher_id: str, body: dict) -> dict:
        return self._call("PUT", f"/vouchers/{quote(voucher_id, safe='')}", body=body,
                          doing=f"issuing voucher {voucher_id}")

    def voucher(self, voucher_id: str) -> dict:
        return self._call("GET", f"/vouchers/{quote(voucher_id, safe='')}", doing=f"reading voucher {voucher_id}")

    def record_event(self, body: dict) -> dict:
        return self._call("POST", "/events", body=body, doing="recording a service event")

    def run_batch(self, day: dt.date | None = None) -> dict:
        return self._call("POST", "/batch/run", query={"date": day.isoformat() if day else None},
                          doing="running the daily batch")

    def events_page(self, *, since: int = 0, period: str | None = None, status: str | None = None,
                    prefix: str | None = None, limit: int = PAGE) -> dict:
        return self._call("GET", "/events", query={"since": since, "period": period, "status": status,
                                                   "prefix": prefix, "limit": limit},
                          doing=f"fetching events after {since}")

    def download_events(self, dest: str | Path, *, period: str | None = None, status: str | None = None,
                        prefix: str | None = None, page: int | None = None) -> int:
        """Every matching event, page by page, into ``dest`` as JSON lines; returns how
        many. Nothing is posted from here: the caller imports the file once it is whole,
        so a service that goes down half way leaves nothing half done."""
        n, since, page = 0, 0, page or PAGE
        with Path(dest).open("w", encoding="utf-8") as fh:
            while True:
                try:
                    data = self.events_page(since=since, period=period, status=status, prefix=prefix, limit=page)
                except PsopUnavailable as exc:
                    raise PsopUnavailable(f"{exc}; {n} events had arrived, none was posted: "
                                          "run the import again when PSOP is back") from exc
                for row in data.get("events", []):
                    fh.write(json.dumps(row, ensure_ascii=False))
                    fh.write("\n")
                    n += 1
                if data.get("next") is None:
                    return n
                since = data["next"]


def _message(exc: HTTPError) -> str:
    try:
        return json.loads(exc.read()).get("error") or exc.reason
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)
