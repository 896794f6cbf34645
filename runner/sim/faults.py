"""Deciding which calls get which fault, the request-rate limiter, and the reset exception."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from runner.sim.config import FaultRule
from runner.sim.seeded import unit

DROP_EXTENSION = "gridrun.sim.drop"
"""ASGI scope extension set by `gridrun sim serve`: a callable(graceful: bool) that closes the connection."""

DOWNLOAD_ROUTES = frozenset({"file", "content"})
_ONLY = {
    "expired": DOWNLOAD_ROUTES,
    "truncated": DOWNLOAD_ROUTES,
    "reset_mid_body": DOWNLOAD_ROUTES,
    "wrong_content_type": DOWNLOAD_ROUTES,
    "corrupt": DOWNLOAD_ROUTES,
    "no_ranges": DOWNLOAD_ROUTES,
    "job_failure": frozenset({"create"}),
    "held": frozenset({"create"}),
    "model_disabled": frozenset({"create"}),
    "not_found": frozenset({"get", "delete", "balance", "requests"}),
    "unknown_status": frozenset({"create", "get", "list"}),
    "not_allowed": frozenset({"delete"}),
}
_NEVER = {"malformed_json": DOWNLOAD_ROUTES}


class SimulatedReset(Exception):
    """The simulator dropped the connection. Raised out of the app when it runs in-process
    (httpx.ASGITransport), where no socket can be closed; a client maps it to a transport error.

    :ivar phase: "before" (nothing was done), "after" (the request was handled, e.g. a video was created
        and paid for), "held" (the request is held, handled when released: `Sim.release_held`) or "mid_body"
        (part of the response body was sent).
    :ivar route: the route name, e.g. "create".
    """

    def __init__(self, *, phase: str, route: str) -> None:
        super().__init__(f"simulated connection reset {phase} handling {route}")
        self.phase = phase
        self.route = route


def applies(rule: FaultRule, route: str) -> bool:
    """Whether `rule` can fire on `route`."""
    if rule.route not in ("*", route):
        return False
    if rule.fault in _ONLY and route not in _ONLY[rule.fault]:
        return False
    return route not in _NEVER.get(rule.fault, frozenset())


class FaultPlan:
    """Counts calls per rule and decides, deterministically for a seed, which rules fire on a call."""

    def __init__(self, rules: Sequence[FaultRule], seed: int) -> None:
        self.rules = tuple(rules)
        self.seed = seed
        self._calls: Counter[int] = Counter()
        self._fired: Counter[int] = Counter()

    def fire(self, route: str) -> list[tuple[FaultRule, float]]:
        """The rules that fire on this call of `route`, each with a seeded coin in [0, 1) for its own choices."""
        out = []
        for i, rule in enumerate(self.rules):
            if not applies(rule, route):
                continue
            self._calls[i] += 1
            n = self._calls[i]
            if rule.times is not None and self._fired[i] >= rule.times:
                continue
            if n in rule.nth or (rule.p > 0 and unit(self.seed, "fault", i, n) < rule.p):
                self._fired[i] += 1
                out.append((rule, unit(self.seed, "coin", i, n)))
        return out


class TokenBucket:
    """A request-rate limit: `rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 when one was available, else the seconds until one will be (nothing taken)."""
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = max(self._at, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate
