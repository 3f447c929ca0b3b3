"""The adapter's HTTP side: ePassi's JSON API over urllib, with timeouts.

A service that cannot be reached, times out or fails (5xx) is :class:`ServiceUnavailable`,
one line naming the URL. Its refusals become avain's own errors: 400 a ValidationError,
404 NotFound, 402 and 409 Refused (with the service's reason code in ``reasons``).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from avain.core.errors import AvainError, NotFound, Refused, ServiceUnavailable, ValidationError

DEFAULT_TIMEOUT = 10.0


__all__ = ["EpassiClient", "ServiceUnavailable"]  # the core's error, raised for ePassi


class EpassiClient:
    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT):
        self.url = url.rstrip("/")
        self.timeout = timeout

    # --- the API ----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def load_wallet(self, phone: str, *, client_ref: str, period: str, amount: int, rest: str,
                    identity_check_required: bool) -> dict[str, Any]:
        return self._call("PUT", f"/wallets/{quote(phone, safe='')}", {
            "client_ref": client_ref, "period": period, "amount": amount, "rest": rest,
            "identity_check_required": identity_check_required})

    def wallets(self) -> list[dict[str, Any]]:
        return self._call("GET", "/wallets")["wallets"]

    def charge(self, *, phone: str, provider: str, amount: int, identity_checked: bool) -> dict[str, Any]:
        return self._call("POST", "/charges", {"phone": phone, "provider": provider, "amount": amount,
                                               "identity_checked": identity_checked})

    def cancel(self, charge_id: str) -> dict[str, Any]:
        return self._call("POST", f"/charges/{quote(charge_id, safe='')}/cancel", {})

    def transactions_page(self, period: str, after: str | None = None) -> dict[str, Any]:
        query = {"period": period, **({"after": after} if after else {})}
        return self._call("GET", f"/transactions?{urlencode(query)}")

    def transactions(self, period: str) -> list[dict[str, Any]]:
        """Every transaction of the month, all pages fetched before anything is returned:
        a service that fails on a later page leaves the caller with an error, not half a
        report."""
        rows: list[dict[str, Any]] = []
        after = None
        while True:
            page = self.transactions_page(period, after)
            rows.extend(page.get("transactions") or [])
            after = page.get("next")
            if not after:
                return rows

    # --- HTTP -------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Accept": "application/json",
                                                  **({"Content-Type": "application/json"} if data else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return self._decode(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
            raise self._refusal(exc.code, raw) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError,
                http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ServiceUnavailable(f"ePassi at {self.url} is not answering: {_one_line(reason)}") from exc

    def _decode(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServiceUnavailable(f"ePassi at {self.url} answered with something that is not JSON") from exc

    def _refusal(self, status: int, raw: bytes) -> AvainError:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = {}
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or f"HTTP {status}")
        code = str(body.get("error") or status)
        if status >= 500:
            return ServiceUnavailable(f"ePassi at {self.url} failed: HTTP {status}: {message}")
        if status == 404:
            return NotFound(f"ePassi: {message}")
        if status in (402, 409):
            return Refused(f"ePassi refused: {message}", [code])
        return ValidationError(f"ePassi: {message}")


def _one_line(reason: object) -> str:
    text = str(reason).strip().splitlines()
    return text[0] if text else type(reason).__name__
