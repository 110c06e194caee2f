"""Hub links: the signed, expiring link in every receipt email that signs the customer in.

A token names the customer and the time it was made, and carries an HMAC of both together with
the user's email address, password hash and the customer's hub link nonce, so it stops working when
the address or password changes, once a link of the customer's was used or every session signed out
(each replaces the nonce), when it is older than HUB_LINK_MAX_AGE_DAYS, or when the account is
deactivated. Staff accounts get none: a link is a credential without a password or a second factor,
and theirs would open the admin. Opening the link only shows a confirm page; the page's POST signs in
(see accounts.services.hub_sign_in), so mail scanners that follow links sign no one in.
"""

from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import base36_to_int, int_to_base36
from django.utils.translation import gettext_lazy as _

from portal.errors import UserFacingError
from portal.links import absolute_url

from .models import Customer

HUB_LINK_EXPIRED = _("This link has expired: links in our emails work for %(days)s days.")
HUB_LINK_INVALID = _(
    "This link does not work. It may have been used already or cut short, or your email address or password "
    "changed after we sent it."
)


class HubLinkError(UserFacingError):
    """A hub link was refused; the message may be shown to whoever opened it (it names no account)."""


class HubLinkExpired(HubLinkError):
    """The link is genuine but older than HUB_LINK_MAX_AGE_DAYS."""

    def __init__(self):
        super().__init__(HUB_LINK_EXPIRED, {"days": settings.HUB_LINK_MAX_AGE_DAYS})


class HubLinkInvalid(HubLinkError):
    """The link was used, altered or cut short, its customer's email or password changed since it was made, or
    it names a staff account."""

    def __init__(self):
        super().__init__(HUB_LINK_INVALID)


HUB_LINK_USED = _("This link was used a moment ago. Ask for a fresh one below.")


class HubLinkUsed(HubLinkError):
    """Another request signed in with the same link first (links work once)."""

    def __init__(self):
        super().__init__(HUB_LINK_USED)


class HubLinkTokenGenerator:
    """Make and check hub-link tokens, in the manner of Django's PasswordResetTokenGenerator."""

    key_salt = "accounts.hub.HubLinkTokenGenerator"
    algorithm = "sha256"

    def make_token(self, customer: Customer) -> str:
        return self._make_token_with_timestamp(customer, self._num_seconds(self._now()), settings.SECRET_KEY)

    def check_token(self, token: str) -> Customer:
        """Return the active customer the token was made for; raise HubLinkInvalid or HubLinkExpired."""
        try:
            customer_b36, ts_b36, _hash = token.split("-")
            customer_id, timestamp = base36_to_int(customer_b36), base36_to_int(ts_b36)
        except ValueError:
            raise HubLinkInvalid() from None
        customer = (
            Customer.objects.select_related("user")
            .filter(pk=customer_id, user__is_active=True, user__is_staff=False, user__is_superuser=False)
            .first()
        )
        if customer is None:
            raise HubLinkInvalid()
        secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        if not any(
            constant_time_compare(self._make_token_with_timestamp(customer, timestamp, secret), token)
            for secret in secrets
        ):
            raise HubLinkInvalid()
        if self._num_seconds(self._now()) - timestamp > settings.HUB_LINK_MAX_AGE_DAYS * 24 * 3600:
            raise HubLinkExpired()
        return customer

    def _make_token_with_timestamp(self, customer: Customer, timestamp: int, secret: str) -> str:
        user = customer.user
        value = "|".join(
            [str(customer.pk), str(user.pk), user.email, user.password, customer.hub_link_nonce, str(timestamp)]
        )
        digest = salted_hmac(self.key_salt, value, secret=secret, algorithm=self.algorithm).hexdigest()[::2]
        return f"{int_to_base36(customer.pk)}-{int_to_base36(timestamp)}-{digest}"

    def _num_seconds(self, dt: datetime) -> int:
        return int((dt - datetime(2001, 1, 1)).total_seconds())

    def _now(self) -> datetime:
        # The seam tests move through time with.
        return datetime.now()


hub_link_token = HubLinkTokenGenerator()


def hub_link_url(*, customer: Customer, next_path: str = "") -> str:
    """The absolute hub link for the customer, optionally landing on next_path (a local path).

    A staff member who is also a customer gets the sign-in page instead: no link signs staff in."""
    if customer.user.is_staff or customer.user.is_superuser:
        login = absolute_url(reverse("account_login"))
        return f"{login}?{urlencode({'next': next_path})}" if next_path else login
    url = absolute_url(reverse("accounts:hub", kwargs={"token": hub_link_token.make_token(customer)}))
    return f"{url}?{urlencode({'next': next_path})}" if next_path else url


def hub_default_destination() -> str:
    """Where a hub link lands: the billing page, or the hub home while billing is not installed."""
    try:
        return reverse("billing:index")
    except NoReverseMatch:
        return reverse("portal:home")
