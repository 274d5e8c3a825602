"""A small client of the settings API (what the ``auditstream settings``/``destinations``
commands use)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from auditstream.errors import AuditstreamError


class ApiRefused(AuditstreamError):
    """The API answered with an error status; the message is its ``detail``."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{status}: {format_detail(detail)}")


def format_detail(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc or 'body'}: {item.get('msg')}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class ApiClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "auditstream-cli"},
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """The JSON body of a 2xx answer (None for 204). Raises :class:`ApiRefused` for an
        error answer, :class:`AuditstreamError` when the API cannot be reached."""
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise AuditstreamError(
                f"cannot reach the settings API at {self._http.base_url} ({type(exc).__name__}): "
                "check --api-url and that `auditstream api` is running"
            ) from exc
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        if response.status_code >= 400:
            detail = body.get("detail", body) if isinstance(body, dict) else body
            raise ApiRefused(response.status_code, detail)
        return body

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/v1/me")
        return result

    @staticmethod
    def account_path(account_id: str, *rest: str) -> str:
        parts = [quote(account_id, safe=""), *(quote(r, safe="") for r in rest)]
        return "/v1/accounts/" + "/".join(parts)

    def close(self) -> None:
        self._http.close()
