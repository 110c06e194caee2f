"""Uploads not covered by tests/accounts/test_avatars.py: the business logo (the other image upload,
shown on every receipt page and PDF and in every email), and avatars declaring huge sizes in JPEG and
WebP headers. Each hostile file is refused, or re-encoded so nothing but pixels is kept, with memory
bounded."""

import io
import resource
import struct
import tracemalloc

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import Customer
from portal.models import SiteSettings
from tests.accounts.test_avatars import encode, noise, photo, png_declaring, stored_files, upload

from .sweep import record_figures

pytestmark = pytest.mark.django_db

LOGO_URL = "/admin/portal/sitesettings/1/change/"
MARKUP = (b"<html", b"<script", b"<svg", b"onload")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims another size (decoding would need width×height×3 bytes)."""
    data = bytearray(encode(photo((64, 64)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """An extended WebP header (VP8X) claiming a canvas of width×height, with a tiny real image inside."""
    inner = encode(photo((16, 16)), "WEBP", lossless=True)[12:]  # the VP8L chunk of a real image
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + inner
    return b"RIFF" + struct.pack("<I", len(body)) + body


def peak_memory_of(action):
    """(result, Python peak bytes, growth of the process's peak resident size in MB) of running action."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        result = action()
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, python_peak, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024


@pytest.mark.parametrize(
    ("content", "name"),
    [(jpeg_declaring(30_000, 30_000), "huge.jpg"), (webp_declaring(16_000, 16_000), "huge.webp")],
    ids=["JPEG header 30000x30000", "WebP header 16000x16000"],
)
def test_an_avatar_declaring_a_huge_size_in_any_format_is_refused_without_decoding(
    client_logged_in, customer, content, name
):
    response, python_peak, rss_growth_mb = peak_memory_of(
        lambda: upload(client_logged_in, content, name, "image/" + name.rsplit(".", 1)[1].replace("jpg", "jpeg"))
    )

    assert response.status_code == 400
    assert response.context["avatar_form"].errors["avatar"]
    assert Customer.objects.get(pk=customer.pk).avatar.name == ""
    assert stored_files() == []
    assert python_peak < 20 * 1024 * 1024 and rss_growth_mb < 100, (python_peak, rss_growth_mb)


# --- the business logo (admin › site settings) -----------------------------------------------------

LOGO_FILES = {
    "PNG with HTML appended": (
        encode(photo(), "PNG") + b"<html><script>alert(document.cookie)</script></html>",
        "logo.png",
    ),
    "SVG with a script": (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>',
        "logo.svg",
    ),
    "HTML renamed to .png": (b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>", "logo.png"),
    "truncated PNG": (encode(noise(), "PNG")[:40_000], "logo.png"),
    "PNG of 144 million pixels in 60 kB": (png_declaring(12_000, 12_000, with_pixels=True), "logo.png"),
    "PNG of 400 million pixels": (png_declaring(20_000, 20_000, with_pixels=True), "logo.png"),
}


def logo_form_data(client) -> dict:
    form = client.get(LOGO_URL).context["adminform"].form
    return {key: value for key, value in form.initial.items() if value not in (None, False, "") and key != "logo"}


def stored_pixels(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:  # the header only: never decode a suspected bomb here
        return image.size[0] * image.size[1]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # what the bomb is meant to trigger
@pytest.mark.parametrize(("content", "name"), LOGO_FILES.values(), ids=LOGO_FILES.keys())
def test_a_hostile_logo_is_refused_or_reencoded_with_memory_bounded(creator_client, content, name):
    """The logo is drawn into every receipt PDF and shown on every receipt page: only bounded pixels may be kept."""
    SiteSettings.objects.get_or_create(pk=1)
    data = logo_form_data(creator_client)
    data["logo"] = SimpleUploadedFile(name, content, content_type="image/png")

    response, python_peak, rss_growth_mb = peak_memory_of(lambda: creator_client.post(LOGO_URL, data))

    assert response.status_code in (200, 302)
    assert python_peak < 20 * 1024 * 1024 and rss_growth_mb < 100, (python_peak, rss_growth_mb)
    site = SiteSettings.objects.get(pk=1)
    refused = response.status_code == 200 and not site.logo
    record_figures("logo upload", file=name, refused=refused)
    if refused:
        assert response.context["adminform"].form.errors["logo"]
        return
    stored = site.logo.read()
    assert not any(marker in stored.lower() for marker in MARKUP), "the logo was stored with its markup"
    pixels = stored_pixels(stored)
    assert pixels <= settings.AVATAR_MAX_PIXELS, f"a logo of {pixels:,} pixels is decoded by every receipt PDF"
    with Image.open(io.BytesIO(stored)) as image:
        image.load()  # bounded above: decoding it is safe, and it must decode


def test_a_good_logo_is_kept_as_a_png_of_bounded_size_with_its_proportions(creator_client):
    SiteSettings.objects.get_or_create(pk=1)
    data = logo_form_data(creator_client)
    data["logo"] = SimpleUploadedFile("wide.jpg", encode(photo((2000, 500)), "JPEG"), content_type="image/jpeg")

    response = creator_client.post(LOGO_URL, data)

    assert response.status_code == 302
    stored = SiteSettings.objects.get(pk=1).logo
    assert stored.name.endswith(".png")
    with Image.open(stored) as image:
        assert image.format == "PNG"
        assert image.size == (960, 240)
