"""Social usernames: how each is validated and turned into a safe https link."""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class SocialNetwork:
    field: str
    label: str
    pattern: re.Pattern
    url_template: str
    rule: str


NETWORKS = [
    SocialNetwork(
        "x_username",
        "X",
        re.compile(r"[A-Za-z0-9_]{1,15}"),
        "https://x.com/{}",
        _("1–15 letters, digits or underscores."),
    ),
    SocialNetwork(
        "instagram_username",
        "Instagram",
        re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?"),
        "https://www.instagram.com/{}/",
        _("Up to 30 letters, digits, dots or underscores."),
    ),
    SocialNetwork(
        "linkedin_username",
        "LinkedIn",
        re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{2,99}"),
        "https://www.linkedin.com/in/{}/",
        _("3–100 letters, digits or hyphens."),
    ),
    SocialNetwork(
        "youtube_handle",
        "YouTube",
        re.compile(r"[A-Za-z0-9_.-]{3,30}"),
        "https://www.youtube.com/@{}",
        _("3–30 letters, digits, dots, hyphens or underscores."),
    ),
    SocialNetwork(
        "tiktok_username",
        "TikTok",
        re.compile(r"[A-Za-z0-9_.]{2,24}"),
        "https://www.tiktok.com/@{}",
        _("2–24 letters, digits, dots or underscores."),
    ),
]
NETWORKS_BY_FIELD = {network.field: network for network in NETWORKS}

# The social profile: what the customer edits and what the directory shows.
SOCIAL_FIELDS = ("bio", "location", *NETWORKS_BY_FIELD, "website_url", "directory_opt_in")


def clean_username(field: str, value: str) -> str:
    """Strip a leading @ or a pasted profile URL and check the username against the network's rule."""
    network = NETWORKS_BY_FIELD[field]
    value = value.strip()
    if value.startswith(("http://", "https://")):
        value = value.rstrip("/").rsplit("/", 1)[-1]
    value = value.removeprefix("@")
    if value and not network.pattern.fullmatch(value):
        raise ValidationError(
            _("That is not a valid %(network)s username. %(rule)s"),
            code="invalid_username",
            params={"network": network.label, "rule": network.rule},
        )
    return value


def social_links(customer) -> list[tuple[str, str]]:
    """Return (label, https URL) for every social profile the customer filled in."""
    links = [
        (network.label, network.url_template.format(getattr(customer, network.field)))
        for network in NETWORKS
        if getattr(customer, network.field)
    ]
    if customer.website_url.startswith("https://"):
        links.append((str(_("Website")), customer.website_url))
    return links
