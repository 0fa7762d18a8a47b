"""One GET of a public JSON service with the body read up to a cap: the price and weather adapters' transport.

The adapters keep their own error type and their own reading of the reply; this module only fetches, through an
``httpx`` transport the tests replace with recorded replies.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

__all__ = ["get_capped"]


async def get_capped(url: str, *, transport: httpx.AsyncBaseTransport | None, timeout_s: float, max_bytes: int,
                     error: Callable[[str], Exception], name: str) -> tuple[int, str, bytes]:
    """GET ``url`` asking for JSON, reading at most ``max_bytes`` of the body.

    Parameters
    ----------
    url : str
    transport : httpx.AsyncBaseTransport or None
        None: the network.
    timeout_s : float
        [s]
    max_bytes : int
        A longer body is refused. [bytes]
    error : callable
        Makes the adapter's exception from a message naming the URL.
    name : str
        The service, for the message when it cannot be reached.

    Returns
    -------
    status : int
    reason_phrase : str
    body : bytes

    Raises
    ------
    Exception
        ``error(...)``: no answer within the timeout, the service unreachable, a body beyond ``max_bytes``.
    """
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout_s,
                                     headers={"Accept": "application/json"}) as client:
            async with client.stream("GET", url) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise error(f"{url}: the reply exceeds {max_bytes:,} bytes")
    except httpx.TimeoutException:
        raise error(f"{url}: no answer within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise error(f"{url}: cannot reach {name}: {type(exc).__name__}: {exc}") from None
    return response.status_code, response.reason_phrase, bytes(body)
