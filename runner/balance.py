"""The pre-flight balance check: before a run sends its first create, the account's balance against what the run
would send, so that a run the account cannot pay for is refused whole instead of stopped half paid by the
provider's 402.

Best effort. The balance is asked once (a free GET, where the provider has the endpoint: `Provider.balance`),
with a short timeout; an answer that is missing (404), an error, late or of a shape not read with certainty lets
the run go on as it would without the check (the provider's 402 still stops it). Only a balance known, and
lower than what the jobs the run sends cost, refuses it: the plan's estimates, counted at the ratio the latest
bills showed where the provider was seen billing clearly above them (`resume.budget_billing`), as the budget counts
them. `gridrun plan` never asks: it stays offline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from .errors import BalanceError, EndpointError, ProviderError
from .jobs import Billing, Job, fitting, scaled, usd_text
from .providers.transport import WEB_PAGE

TIMEOUT = 5.0
"""Seconds the balance may take to come; a run does not wait longer for a check it can do without."""

OUTCOMES = ("enough", "short", "unlimited", "unknown", "not_asked", "web_page")
"""`BalanceCheck.outcome`: the balance covers the run, does not, has no limit, could not be read, or was not
asked (the provider has no balance endpoint, or the run sends nothing to pay for); or a web page answered in the
API's place (a web site at the base URL, a login portal on the way), which every create would get too."""


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    """What the check found (`run --json` says it as one `balance` event)."""

    outcome: str                      # one of OUTCOMES
    cost_micros: int                  # what the jobs the run sends cost: their estimates, at `billing`'s ratio
    jobs: int                         # how many jobs that is
    balance_micros: int | None = None  # what the account has left, when known (not for `unlimited`)
    detail: str | None = None         # why the balance is `unknown` or `not_asked`
    billing: Billing | None = None    # the ratio of bills to estimates the cost counts them at (None: as estimated)
    estimate_micros: int | None = None  # with `billing`: the plan's estimate of those jobs

    def as_event(self) -> dict[str, Any]:
        """The check as `run --json`'s event."""
        return {
            "event": "balance", "outcome": self.outcome,
            "balance_usd": None if self.balance_micros is None else self.balance_micros / 1e6,
            "cost_usd": self.cost_micros / 1e6, "jobs": self.jobs, "detail": self.detail,
        }


def to_send(submit: Sequence[Job], in_flight: Sequence[Job], *, budget_micros: int | None,
            allow_partial: bool, billing: Billing | None = None) -> list[Job]:
    """The jobs of `submit` the run sends: all of them, or with `allow_partial` those that fit the budget beside
    the jobs in flight it follows, as the run reserves them (`jobs.fitting`: one that does not fit is skipped, later
    ones that fit are sent), counted at `billing`'s ratio of bills to estimates when bills above them were seen."""
    if budget_micros is None or not allow_partial:
        return list(submit)
    return fitting(submit, in_flight, budget_micros, billing)


async def check(provider: Any, client: Any, jobs: Sequence[Job], *, timeout: float | None = None,
                billing: Billing | None = None) -> BalanceCheck:
    """Ask `provider` for the account's balance, once (within `timeout` seconds, `TIMEOUT` by default), and weigh
    it against the cost of `jobs`: their estimates, counted at `billing`'s ratio of bills to estimates where the
    provider was seen billing above them (the account pays the bills). Never raises for the provider's sake: what
    goes wrong is an `unknown` balance."""
    timeout = TIMEOUT if timeout is None else timeout
    estimate = sum(j.cost_micros for j in jobs)
    cost = scaled(estimate, billing)

    def found_as(outcome: str, **kw: Any) -> BalanceCheck:
        if cost == estimate:
            return BalanceCheck(outcome, cost, len(jobs), **kw)
        return BalanceCheck(outcome, cost, len(jobs), billing=billing, estimate_micros=estimate, **kw)

    ask = getattr(provider, "balance", None)
    if ask is None:
        return found_as("not_asked", detail=f"{provider.name} has no balance endpoint")
    if not cost:
        return found_as("not_asked", detail="this run sends nothing to pay for")
    detail = f"no answer within {timeout:g} s"
    with anyio.move_on_after(timeout):
        try:
            found = await ask(client)
        except ProviderError as exc:
            if exc.code == WEB_PAGE:
                return found_as("web_page", detail=exc.message)
            detail = str(exc)
        except ValueError as exc:
            detail = f"GET /v1/balance: an answer gridrun cannot read with certainty ({exc})"
        else:
            if found.micros is None:
                return found_as("unlimited")
            return found_as("short" if found.micros < cost else "enough", balance_micros=found.micros)
    return found_as("unknown", detail=detail)


def refusal(found: BalanceCheck, submit: Sequence[Job], in_flight: Sequence[Job],
            billing: Billing | None = None) -> BalanceError:
    """The error that refuses a run whose balance is `short`: the balance, the cost, and what to do; where the
    balance covers some of the jobs, the budget (`--allow-partial`) that sends just those."""
    left = found.balance_micros or 0
    counted = ("the plan's estimate" if found.billing is None or found.estimate_micros is None else
               f"estimated at {usd_text(found.estimate_micros)}, counted at {found.billing.said()}")
    message = (f"the account's balance is {usd_text(left)}, below the {usd_text(found.cost_micros)} the "
               f"{_jobs(found.jobs)} this run would send cost ({counted}): nothing was sent; "
               "top up the balance and run again")
    # A budget counts the jobs in flight the run follows too: the one that sends what the balance covers has them,
    # at the ratio it counts them at.
    following = scaled(sum(j.cost_micros for j in in_flight), billing)
    budget = math.floor((max(0, left) + following) / 10_000) * 10_000  # to the cent below
    fits = len(to_send(submit, in_flight, budget_micros=budget, allow_partial=True, billing=billing))
    if fits:
        message += (f", or send the {_jobs(fits)} it covers with `--budget {budget / 1e6:.2f} --allow-partial`"
                    + (f" (the budget counts the {_jobs(len(in_flight))} in flight too)" if in_flight else ""))
    return BalanceError(message, balance_micros=found.balance_micros, cost_micros=found.cost_micros, jobs=found.jobs, jobs_fit=fits)


def not_the_api(found: BalanceCheck, provider: Any) -> EndpointError:
    """The error that refuses a run whose balance check was answered with a web page (`web_page`): the base URL
    reaches a web site, or a login portal stands on the way, not the API; every create would get the same page,
    and its outcome would be unknown. Names the base URL, where it is set, and the API's own."""
    base = getattr(provider, "base_url", None) or "the provider's base URL"
    where = getattr(provider, "base_url_settings", lambda: None)()
    default = getattr(getattr(provider, "caps", None), "base_url", None)
    api_url = f" to the API's URL ({default})" if default and default.rstrip("/") != base.rstrip("/") else ""
    setting = f"set {where}{api_url}" if where else f"set the base URL{api_url}"
    return EndpointError(f"{base} answers with a web page, not the API ({found.detail}): nothing was sent; "
                         f"{setting}, or sign in to the network's login page if one stands on the way, then run "
                         "again", base_url=base)


def _jobs(n: int) -> str:
    return f"{n:,} job{'' if n == 1 else 's'}"
