"""A synchronous client for an ASGI app in the test's own process, over httpx's ASGITransport.

Starlette's TestClient is deprecated with httpx; this needs nothing but httpx and asyncio.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class AsgiClient:
    def __init__(self, app: Any, headers: dict[str, str] | None = None) -> None:
        # raise_app_exceptions=False: an unexpected error must come back as the app's own 500.
        self._transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._headers = headers or {}

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self._transport, base_url="http://testserver", headers=self._headers
            ) as client:
                content = kwargs.pop("content", None)
                if content is not None and not isinstance(content, bytes):
                    content = _async_chunks(list(content))
                return await client.request(method, url, content=content, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


async def _async_chunks(chunks: list[bytes]) -> Any:
    for chunk in chunks:
        yield chunk
