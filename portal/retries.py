"""The one backoff the portal's retries share: contact pushes, Stripe events and emails."""

from datetime import timedelta


def backoff(attempt: int, *, first: timedelta, longest: timedelta) -> timedelta:
    """The wait after the `attempt`-th failure: `first`, then doubling, never more than `longest`."""
    doublings = min(max(attempt, 1) - 1, 40)  # past any `longest`; more would overflow a timedelta
    return min(first * 2**doublings, longest)
