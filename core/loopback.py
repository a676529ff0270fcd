"""Whether a host names this machine's loopback: the one rule for `serve --no-auth`, `cloudfn web`
and the server's Host-header check (DNS rebinding), which had drifted apart."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1, in any case, with surrounding spaces, a trailing dot or
    IPv6 brackets. A name that merely starts like one (127.0.0.1.evil.example) is not."""
    h = host.strip().lower()
    if h.startswith("[") or h.endswith("]"):
        if not (h.startswith("[") and h.endswith("]")):
            return False
        h = h[1:-1]
    if h.endswith("."):
        h = h[:-1]
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def is_loopback_authority(host: bytes | str) -> bool:
    """Whether an HTTP Host header, with or without a port, names this machine's loopback."""
    h = (host.decode("latin-1") if isinstance(host, bytes) else host).strip()
    if h.startswith("["):
        end = h.find("]")
        rest = h[end + 1 :] if end >= 0 else ""
        if end < 0 or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return False
        h = h[: end + 1]
    elif ":" in h:
        h, _, port = h.rpartition(":")
        if not port.isdigit() or ":" in h:  # a bare IPv6 address needs its brackets here
            return False
    return is_loopback(h)
