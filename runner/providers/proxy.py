"""Which proxy a request goes through, the same for both HTTP stacks (`GRIDRUN_HTTP`).

The standard environment variables, read once per client: `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http
ones, `ALL_PROXY` for either when its own is unset (lower-case forms too, as curl reads them), and `NO_PROXY`
(hosts, domains and CIDR address ranges sent directly; `*` for all). This machine (127.0.0.1, ::1, localhost: the simulator) is never
reached through a proxy. Only http:// and https:// proxies are supported.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from urllib.parse import urlsplit

import httpx


class Route:
    """A proxy a request goes through: its URL (as given, credentials and all), the variable that named it, and
    how messages name it (without credentials)."""

    __slots__ = ("label", "problem", "url", "var")

    def __init__(self, url: str, var: str) -> None:
        self.url = url
        self.var = var
        self.problem = unparsed(url)
        if self.problem is not None:  # what it holds may be a password's start: named by its variable alone
            self.label = f"(from {var})"
            return
        parts = urlsplit(url)
        host = parts.hostname or "?"
        where = f"[{host}]" if ":" in host else host
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
        self.label = f"{parts.scheme}://{where}:{port} (from {var})"

    def unparsed_text(self) -> str:
        """What to do about a proxy URL that does not parse (`problem`), none of it quoted."""
        return (f"the proxy URL in {self.var} does not parse, {self.problem}: percent-encode a '/', '#', '?' or '@' "
                f"in its user name or password ('%2F', '%23', '%3F', '%40') and give a port from 1 to 65535, or "
                f"unset {self.var}")


def unparsed(url: str) -> str | None:
    """Why the proxy URL `url` does not parse, in words that quote none of it; None: it does. A `/`, `#`, `?` or
    `@` in its user name or password, not percent-encoded, ends its host early: the rest, read as a port, fails,
    or leaves an `@` past the host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number from 0 to 65535)
    except ValueError:
        return "what follows its host is not a port from 1 to 65535"
    if "@" in url[len(parts.scheme) + 3 + len(parts.netloc):]:
        return "an '@' follows its host"
    return None


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: localhost, 127.0.0.0/8, ::1."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _networks(no_proxy: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The address ranges `NO_PROXY` lists in CIDR form (`10.0.0.0/8`, `fd00::/8`), which curl, requests and Go
    send directly and Python's own check (names and name suffixes only) does not."""
    found = []
    for entry in no_proxy.split(","):
        entry = entry.strip()
        if "/" not in entry:
            continue
        try:
            found.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            continue
    return tuple(found)


def _in_networks(host: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """Whether `host`, an IP address, is in one of `networks`; a name is not (it is not resolved)."""
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return any(address in network for network in networks)


class Proxies:
    """The proxies the environment names, read once; `route` says which one a request goes through."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        found = urllib.request.getproxies_environment() if environ is None else environ
        self._by_scheme: dict[str, Route] = {}
        for scheme in ("http", "https"):
            given = (found.get(scheme) or found.get("all") or "").strip()
            if given:
                var = f"{scheme.upper()}_PROXY" if found.get(scheme, "").strip() else "ALL_PROXY"
                self._by_scheme[scheme] = Route(given if "://" in given else f"http://{given}", var)
        self._env = {"no": found["no"]} if found.get("no") else {}
        self._networks = _networks(found.get("no") or "")
        self._known: dict[tuple[str, str, int | None], Route | None] = {}
        self._origins: dict[str, Route | None] = {}

    def __bool__(self) -> bool:
        return bool(self._by_scheme)

    def route(self, scheme: str, host: str, port: int | None) -> Route | None:
        """The proxy for a request to `scheme://host:port`, or None to connect directly.

        :raises httpx.UnsupportedProtocol: the proxy is not http:// or https:// (a socks5:// one): the request
            is not sent.
        """
        origin = (scheme, host, port)
        if origin in self._known:
            return self._known[origin]
        chosen = self._by_scheme.get(scheme)
        if chosen is not None and (
            is_loopback(host) or urllib.request.proxy_bypass_environment(f"{host}:{port}" if port else host, self._env)
            or _in_networks(host, self._networks)
        ):
            chosen = None
        if chosen is not None and chosen.problem is not None:
            raise httpx.UnsupportedProtocol(chosen.unparsed_text())
        if chosen is not None and urlsplit(chosen.url).scheme.lower() not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"the proxy {chosen.label} is not http:// nor https://, the only proxies gridrun sends through; "
                f"unset {chosen.var} or add the host to NO_PROXY"
            )
        self._known[origin] = chosen
        return chosen

    def route_url(self, url: str) -> Route | None:
        """`route` for a whole URL, known by its origin (what comes before its path): parsed once per origin."""
        start = url.find("//") + 2
        end = url.find("/", start)
        origin = url if end < 0 else url[:end]
        if origin in self._origins:
            return self._origins[origin]
        parts = httpx.URL(url)
        chosen = self._origins[origin] = self.route(parts.scheme, parts.host, parts.port)
        return chosen


    def named_for(self, url: str) -> Route | None:
        """The proxy the environment names for `url`, whether requests go through it or are refused for it (a
        socks5:// one); None: they go directly."""
        try:
            return self.route_url(url)
        except httpx.UnsupportedProtocol:
            return self._by_scheme.get(httpx.URL(url).scheme)


class RoutedTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, each request sent directly or through the proxy `proxies` names for it; a failure
    names the proxy (`exc.proxy`)."""

    def __init__(self, proxies: Proxies, **options: object) -> None:
        self._proxies = proxies
        self._options = options
        self._direct = httpx.AsyncHTTPTransport(**options)  # type: ignore[arg-type]
        self._through: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = self._proxies.route(request.url.scheme, request.url.host, request.url.port)
        if route is None:
            return await self._direct.handle_async_request(request)
        transport = self._through.get(route.url)
        if transport is None:
            transport = self._through[route.url] = httpx.AsyncHTTPTransport(
                proxy=httpx.Proxy(route.url), **self._options  # type: ignore[arg-type]
            )
        try:
            response = await transport.handle_async_request(request)
        except httpx.RequestError as exc:
            exc.proxy = route  # type: ignore[attr-defined]
            raise
        response.extensions["proxy"] = route  # an answer not the API's names it (`transport.status_error`)
        return response

    async def aclose(self) -> None:
        for transport in (self._direct, *self._through.values()):
            await transport.aclose()
