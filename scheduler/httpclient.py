"""The dispatcher's HTTP clients: a few sharded ``httpx.AsyncClient``s, one SSL context.

Adapters speak httpx. Underneath, the connections are aiohttp's by default
(PROMO_HTTP_ENGINE=aiohttp): its C parser and connection pool cost about a third of
httpcore's CPU per request, which decides how fast a burst of thousands of posts goes out
on a small machine. Its errors are mapped to httpx's, keeping the one distinction the
dispatcher relies on: a failure to connect (nothing sent) versus a timeout or dropped
connection after the request went out (outcome unknown).

With PROMO_HTTP_ENGINE=httpx, httpcore's own pool is used; it does work for every waiting
request each time a connection frees, so each shard lets at most as many requests into
its pool as it has connections and the rest wait on an asyncio semaphore.
"""

from __future__ import annotations

import asyncio
import io
import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives the shard's slot back when the response is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: asyncio.Semaphore):
        self._inner = inner
        self._release: asyncio.Semaphore | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._release is not None:
                self._release.release()
                self._release = None


class GatedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that admits at most ``slots`` requests at a time."""

    def __init__(self, inner: httpx.AsyncBaseTransport, slots: int):
        self._inner = inner
        self._gate = asyncio.Semaphore(slots)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._gate.acquire()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._gate.release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(response.stream, self._gate)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose connections are an aiohttp connector's."""

    #: Idle connections are dropped well before common server keep-alive timeouts (5 s and up),
    #: so a POST is not written into a connection the server is closing.
    KEEPALIVE = 4.0

    def __init__(self, connections: int, context: ssl.SSLContext):
        self._connections = connections
        self._context = context
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._context,
                                             keepalive_timeout=self.KEEPALIVE)
            # httpx decodes content-encoding itself; cookies are not ours to keep
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        limits = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=limits.get("connect"),
                                        sock_read=limits.get("read"),
                                        connect=_sum(limits.get("pool"), limits.get("connect")))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                   if k.lower() != b"content-length"]
        body = await request.aread()
        # aiohttp warns (ResourceWarning) that a bytes body over 1 MiB may hold up the event loop, and
        # sends a file-like one in chunks: an image upload goes as a stream.
        data: bytes | io.BytesIO | None = io.BytesIO(body) if len(body) > 2**20 else body or None
        try:
            async with session.request(request.method, str(request.url), data=data, headers=headers,
                                       allow_redirects=False, timeout=timeout,
                                       skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding")) as r:
                content = await r.read()
                return httpx.Response(r.status, headers=list(r.raw_headers), content=content, request=request,
                                      extensions={"http_version": b"HTTP/1.1",
                                                  "reason_phrase": (r.reason or "").encode("latin-1")})
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out waiting for the answer", request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
        except aiohttp.ClientOSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _sum(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


ENGINES = ("aiohttp", "httpx")


def make_clients(count: int, connections: int, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None,
                 engine: str = "aiohttp") -> list[httpx.AsyncClient]:
    """``count`` clients of ``connections`` connections each, sharing one SSL context."""
    timeouts = httpx.Timeout(timeout, connect=min(10.0, timeout))
    headers = {"User-Agent": "promo-scheduler"}
    if transport is not None:  # tests: one given transport for every shard
        return [httpx.AsyncClient(transport=transport, timeout=timeouts, headers=headers) for _ in range(count)]
    context = ssl.create_default_context()
    if engine == "aiohttp":
        return [httpx.AsyncClient(transport=AiohttpTransport(connections, context), timeout=timeouts,
                                  headers=headers) for _ in range(count)]
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return [
        httpx.AsyncClient(
            transport=GatedTransport(httpx.AsyncHTTPTransport(verify=context, limits=limits), connections),
            timeout=timeouts, headers=headers)
        for _ in range(count)
    ]
