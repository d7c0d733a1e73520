"""Which hosts an outgoing call may carry the operation id and trace context to.

``CST_PROPAGATE_TO`` is an allow-list of hosts. A call made with ``chassis_session()`` or the
httpx hooks to a host on the list gets ``X-Operation-ID``, ``traceparent`` and ``tracestate``;
a call to any other host gets none of them (and a redirect from an allowed host to another one
loses them). A third party (a payment provider, a SaaS API) thus never learns the client's ids,
its trace id, or the vendor entries a client put into ``tracestate``.

The default, ``internal``, allows only names that cannot be a third party's:

- loopback: ``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``::1``;
- single-label names (``payments``, ``inventory``): Docker Compose and Kubernetes service names
  inside one network or namespace; a public host always has a dot;
- the cluster-local and private-use suffixes ``.svc``, ``.cluster.local`` (Kubernetes) and
  ``.internal`` (reserved by ICANN for private use in 2024, also used by cloud DNS).

Private IP addresses are *not* internal by default: an address in ``10.0.0.0/8`` may be a NAT
gateway or a VPC endpoint of a third party; list them explicitly when they are your services.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

__all__ = ["INTERNAL", "HostAllowList", "parse_host_list"]

INTERNAL = "internal"
"""The ``CST_PROPAGATE_TO`` entry standing for loopback and cluster-local names (the default)."""

_INTERNAL_SUFFIXES = (".localhost", ".svc", ".cluster.local", ".internal")
# A host name (letters, digits, "-", "."), optionally with a leading "." (any subdomain), or an
# IPv6 literal, which has colons.
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_HOST_ENTRY = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")


def _normalise(host: str) -> str:
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        return None
    # inet_aton takes what resolvers take too: "2130706433", "0x7f.1", "127.1" are addresses,
    # not single-label names.
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def is_internal(host: str) -> bool:
    """Tell whether ``host`` (already lower-case) is loopback or a cluster-local name."""
    address = _ip(host)
    if address is not None:
        return address.is_loopback
    return host == "localhost" or "." not in host or host.endswith(_INTERNAL_SUFFIXES)


@dataclass(frozen=True, slots=True)
class HostAllowList:
    """The hosts outgoing calls may carry the ids to (``CST_PROPAGATE_TO``, parsed).

    ``internal``: loopback and cluster-local names (see the module); ``everything``: ``*``;
    ``exact``: host names and IP addresses; ``suffixes``: ``.example.com`` entries, which allow
    ``example.com`` and every subdomain.
    """

    internal: bool = True
    everything: bool = False
    exact: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    def allows(self, host: str | None) -> bool:
        """Tell whether a call to ``host`` (``None``: the URL had none) may carry the ids."""
        if host is None:
            return False
        if self.everything:
            return True
        name = _normalise(host)
        if not name:
            return False
        if name in self.exact:
            return True
        if self.suffixes and (name.endswith(self.suffixes) or "." + name in self.suffixes):
            return True
        return self.internal and is_internal(name)


def parse_host_list(entries: list[str]) -> HostAllowList | None:
    """Build a :class:`HostAllowList` from entries; ``None`` when one is not a host pattern.

    ``none`` (alone) allows nothing; ``*`` allows everything; ``internal`` adds the default set.
    """
    cleaned = [_normalise(entry) for entry in entries if entry.strip()]
    if cleaned in ([], ["none"]):
        return HostAllowList(internal=False)
    internal = everything = False
    exact: set[str] = set()
    suffixes: list[str] = []
    for entry in cleaned:
        if entry == INTERNAL:
            internal = True
        elif entry == "*":
            everything = True
        elif ":" in entry:
            try:
                exact.add(str(ipaddress.IPv6Address(entry)))
            except ValueError:
                return None
        elif _HOST_ENTRY.fullmatch(entry):
            if entry.startswith("."):
                suffixes.append(entry)
            else:
                exact.add(entry)
        else:
            return None
    return HostAllowList(internal, everything, frozenset(exact), tuple(suffixes))
