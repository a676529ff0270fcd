"""Destination webhooks of asynchronous invocations (`async.on_success` / `on_failure`).

A function author chooses the URL, so it is hostile input aimed from inside the platform's
host: at the platform's own API on loopback, at the cloud's metadata service (169.254.169.254),
at the private network. So, unless `async.webhook_allow_private` is on:
- the host name is resolved once and every address must be public; the request then goes to
  that checked address (Host header and TLS name kept), so DNS rebinding between the check and
  the connection cannot swap in 127.0.0.1;
- redirects are not followed (a public URL redirecting to loopback would bypass the check);
- the request carries no credential of the platform: a fresh client with no default headers.
Sends are bounded (timeout, 3 tries with backoff) and run off the invocation path.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

from core import __version__

log = logging.getLogger("cloudfn.async")
TRIES = 3
BACKOFF = 0.5  # seconds before the second try; doubled after


class WebhookRefused(Exception):
    """The URL points where a webhook may not go; the message says why and how to allow it."""


def _forbidden(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for test, what in (
        (addr.is_loopback, "loopback"),
        (addr.is_link_local, "link-local (cloud metadata)"),
        (addr.is_unspecified, "unspecified"),
        (addr.is_multicast, "multicast"),
        (addr.is_private, "private"),
        (addr.is_reserved, "reserved"),
    ):
        if test:
            return what
    return ""


async def resolve_checked(url: str, allow_private: bool) -> tuple[str, str, int]:
    """(host, address, port) for `url`, or WebhookRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"{url[:100]!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise WebhookRefused("a webhook URL may not carry a user name or password")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookRefused(f"{url[:100]!r} has an invalid port") from None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookRefused(f"cannot resolve {host!r}: {exc}") from None
    addrs = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addrs:
        raise WebhookRefused(f"{host!r} resolves to no address")
    if not allow_private:
        for addr in addrs:
            why = _forbidden(addr)
            if why:
                raise WebhookRefused(
                    f"webhook {host!r} resolves to {addr}, a {why} address: destinations may not "
                    "reach this host or its network unless async.webhook_allow_private is on"
                )
    return host, str(addrs[0]), port


async def send(url: str, body: dict[str, Any], timeout: float, allow_private: bool) -> int:
    """POST `body` as JSON; the final HTTP status. Raises WebhookRefused, or httpx.HTTPError
    after the last try."""
    host, addr, port = await resolve_checked(url, allow_private)
    parts = urlsplit(url)
    netloc = f"[{addr}]" if ":" in addr else addr
    target = parts._replace(netloc=f"{netloc}:{port}").geturl()
    default_port = port == (443 if parts.scheme == "https" else 80)
    headers = {
        "host": host if default_port else f"{host}:{port}",
        "content-type": "application/json",
        "user-agent": f"cloudfn/{__version__} (async destination)",
    }
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    delay = BACKOFF
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for attempt in range(1, TRIES + 1):
            try:
                resp = await client.post(target, json=body, headers=headers, extensions=extensions)
                if resp.status_code < 500 and resp.status_code != 429:
                    return resp.status_code
                if attempt == TRIES:
                    return resp.status_code
            except httpx.HTTPError:
                if attempt == TRIES:
                    raise
            await asyncio.sleep(delay)  # backoff between tries, not a wait for an event
            delay *= 2
    return 0
