"""Findings 10 and 13: what one signed-in account or one client may make the portal do in a row.

Card testing needs SetupIntents from a merchant (each lets its holder try a stolen card against the
business's Stripe account); an image upload costs CPU and memory to decode. Both are limited per account
and per client in the shared cache (allauth's rate limits, ACCOUNT_RATE_LIMITS), whatever address the
headers claim; and the pixels an avatar may decode are bounded (AVATAR_MAX_PIXELS)."""

import io
import struct
import time
import zlib

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from accounts.avatars import AVATAR_TOO_MANY_PIXELS, UPLOAD_RATE_LIMITED
from billing.gateways.fake import FakeGateway
from billing.views import CARD_SETUP_RATE_LIMITED
from portal.models import SiteSettings
from tests.accounts.test_avatars import encode, photo, png_chunk, stored_files
from tests.factories import CustomerFactory

from .conftest import signed_in
from .sweep import record_figures
from .test_throttling import spoofed_headers
from .test_uploads import LOGO_URL, logo_form_data

pytestmark = pytest.mark.django_db

SETUP_URL = "/billing/cards/setup/"
AVATAR_URL = "/settings/profile/avatar/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    cache.clear()


def setup_intents(client, count: int) -> tuple[list[int], set[str]]:
    """POST the card form's SetupIntent request `count` times: the statuses and the client secrets handed out."""
    statuses, secrets = [], set()
    for _ in range(count):
        response = client.post(SETUP_URL, headers=spoofed_headers())
        statuses.append(response.status_code)
        if response.status_code == 200:
            secrets.add(response.json()["client_secret"])
    return statuses, secrets


# --- SetupIntents ------------------------------------------------------------------------------------


def test_one_account_cannot_mint_setup_intents_without_limit(client, gateway):
    customer = CustomerFactory()
    signed_in(client, customer.user)

    statuses, secrets = setup_intents(client, 40)

    assert statuses[:5] == [200] * 5
    assert set(statuses[5:]) == {429}
    # The open SetupIntent is handed out again while it can be confirmed: one intent, never forty.
    assert len(secrets) == 1
    assert len([name for name, _ in FakeGateway.calls if name == "setup_intent_create"]) == 1
    refused = client.post(SETUP_URL)
    assert refused.json() == {"error": str(CARD_SETUP_RATE_LIMITED)}  # card.js shows it under the card field
    record_figures("card testing", requests=40, intents=len(secrets), answered_429=statuses.count(429), errors=0)


def test_one_client_cannot_mint_setup_intents_through_many_accounts(gateway):
    statuses = []
    for _ in range(4):
        browser = signed_in(Client(), CustomerFactory().user)
        statuses += setup_intents(browser, 5)[0]

    assert statuses.count(200) == 10  # per client address: 10 in 10 minutes
    assert set(statuses[10:]) == {429}
    record_figures("card testing", accounts=4, requests=20, intents=10, answered_429=10)


def test_the_setup_intent_limit_frees_up_after_its_window(client, gateway, monkeypatch):
    signed_in(client, CustomerFactory().user)
    setup_intents(client, 6)
    later = time.time() + 11 * 60
    monkeypatch.setattr(time, "time", lambda: later)

    assert client.post(SETUP_URL).status_code == 200


# --- avatar and logo uploads -------------------------------------------------------------------------


def rgba_png(width: int, height: int) -> bytes:
    """An RGBA PNG of transparent pixels: ~64 kB for 4096 × 4096, 64 MB once decoded."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    row = bytes(1 + width * 4)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row * min(512, height - start)) for start in range(0, height, 512))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", data + compressor.flush()) + png_chunk(b"IEND", b"")


def test_the_4096_pixel_png_of_the_finding_is_refused_from_its_header(client):
    customer = CustomerFactory()
    signed_in(client, customer.user)
    bomb = rgba_png(4096, 4096)
    assert len(bomb) < 70_000

    response = client.post(AVATAR_URL, {"avatar": SimpleUploadedFile("big.png", bomb, content_type="image/png")})

    assert response.status_code == 400
    message = str(AVATAR_TOO_MANY_PIXELS) % {"width": 4096, "height": 4096, "limit": 4.2}
    assert response.context["avatar_form"].errors["avatar"] == [message]
    assert stored_files() == []
    record_figures("avatar cost", file="4096x4096 RGBA PNG", bytes=len(bomb), refused=True)


def test_avatar_uploads_are_limited_per_account_whatever_the_headers_claim(client):
    customer = CustomerFactory()
    signed_in(client, customer.user)
    image = encode(photo((600, 600)), "PNG")

    statuses = [
        client.post(
            AVATAR_URL, {"avatar": SimpleUploadedFile("me.png", image, "image/png")}, headers=spoofed_headers()
        ).status_code
        for _ in range(12)
    ]

    assert statuses == [302] * 10 + [429] * 2
    refused = client.post(AVATAR_URL, {"avatar": SimpleUploadedFile("me.png", image, "image/png")})
    assert str(UPLOAD_RATE_LIMITED) in refused.content.decode()
    record_figures("avatar uploads", requests=12, decoded=10, answered_429=2)


def test_avatar_uploads_are_limited_per_client_across_accounts():
    image = encode(photo((64, 64)), "PNG")
    statuses = []
    for _ in range(3):
        browser = signed_in(Client(), CustomerFactory().user)
        statuses += [
            browser.post(AVATAR_URL, {"avatar": SimpleUploadedFile("me.png", image, "image/png")}).status_code
            for _ in range(10)
        ]

    assert statuses.count(302) == 20  # per client address: 20 in 10 minutes
    assert set(statuses[20:]) == {429}


def test_logo_uploads_are_limited_per_account(creator_client):
    SiteSettings.objects.get_or_create(pk=1)
    logo = encode(Image.new("RGB", (300, 100), (10, 20, 30)), "PNG")
    statuses, errors = [], []
    for _ in range(12):
        data = {**logo_form_data(creator_client), "logo": SimpleUploadedFile("logo.png", logo, "image/png")}
        response = creator_client.post(LOGO_URL, data)
        statuses.append(response.status_code)
        if response.status_code == 200:
            errors.append(response.context["adminform"].form.errors["logo"])

    assert statuses == [302] * 10 + [200] * 2
    assert errors == [[str(UPLOAD_RATE_LIMITED)]] * 2
    record_figures("logo uploads", requests=12, decoded=10, refused=2)


def test_an_avatar_decodes_at_most_avatar_max_pixels(client, settings):
    """The JPEG path: a photo is decoded at a reduced scale, so its own size is not the cost."""
    signed_in(client, CustomerFactory().user)
    photo_48mp = encode(photo((8000, 6000)), "JPEG", quality=50)
    with Image.open(io.BytesIO(photo_48mp)) as image:
        image.draft("RGB", (512, 512))
        assert image.size[0] * image.size[1] <= settings.AVATAR_MAX_PIXELS

    assert client.post(AVATAR_URL, {"avatar": SimpleUploadedFile("p.jpg", photo_48mp, "image/jpeg")}).status_code == 302
