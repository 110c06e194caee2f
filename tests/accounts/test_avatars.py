"""Avatar uploads through /settings/profile/avatar/: good images are re-encoded to a bare 256×256
WebP; anything else is refused with a clear message, the bad ones before any pixel is decoded."""

import io
import os
import re
import resource
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.avatars import (
    AVATAR_BOMB,
    AVATAR_TOO_LARGE,
    AVATAR_TOO_MANY_PIXELS,
    AVATAR_UNREADABLE,
    AVATAR_WRONG_TYPE,
)
from accounts.models import Customer

UPLOAD_URL = "/settings/profile/avatar/"
REMOVE_URL = "/settings/profile/avatar/remove/"
STORED_NAME = re.compile(r"avatars/[0-9a-f]{32}\.webp")
EXIF_MAKE, EXIF_ARTIST, EXIF_ORIENTATION = 0x010F, 0x013B, 0x0112


# --- building test images ------------------------------------------------------------------


def encode(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def photo(size=(400, 300), color=(200, 80, 40)):
    return Image.new("RGB", size, color)


def noise(size=(300, 300)):
    """Incompressible pixels, so a cut-off file really lacks image data."""
    return Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))


def jpeg_with_exif():
    exif = Image.Exif()
    exif[EXIF_MAKE] = "SpyCam Industries"
    exif[EXIF_ARTIST] = "Private Person, 1 Secret Lane"
    return encode(photo(), "JPEG", exif=exif, quality=90)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, *, with_pixels: bool) -> bytes:
    """A 1-bit greyscale PNG of the given size; with_pixels adds the (all-zero) image data,
    which zlib squeezes from width×height/8 bytes into a few kilobytes."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    data = b""
    if with_pixels:
        row = bytes(1 + (width + 7) // 8)  # filter byte + packed pixels
        compressor = zlib.compressobj(9)
        rows_per_part = 1000
        parts = [
            compressor.compress(row * min(rows_per_part, height - start)) for start in range(0, height, rows_per_part)
        ]
        data = png_chunk(b"IDAT", b"".join(parts) + compressor.flush())
    return b"\x89PNG\r\n\x1a\n" + header + data + png_chunk(b"IEND", b"")


def upload(client, content: bytes, name="avatar.png", content_type="image/png"):
    return client.post(UPLOAD_URL, {"avatar": SimpleUploadedFile(name, content, content_type=content_type)})


def stored_files():
    folder = Path(settings.MEDIA_ROOT) / "avatars"
    return sorted(folder.iterdir()) if folder.exists() else []


def stored_avatar(customer) -> tuple[str, bytes]:
    name = Customer.objects.get(pk=customer.pk).avatar.name
    assert STORED_NAME.fullmatch(name), name
    return name, (Path(settings.MEDIA_ROOT) / name).read_bytes()


def assert_clean_webp(data: bytes):
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "WEBP"
        assert image.size == (settings.AVATAR_SIZE, settings.AVATAR_SIZE) == (256, 256)
        assert dict(image.getexif()) == {}
        assert not {"exif", "xmp", "icc_profile"} & set(image.info)
        image.load()
    assert b"Exif" not in data and b"EXIF" not in data and b"XMP " not in data


def assert_refused(response, customer, message, *, before):
    assert response.status_code == 400
    assert response.context["avatar_form"].errors["avatar"] == [str(message)]
    assert Customer.objects.get(pk=customer.pk).avatar.name == before
    assert stored_files() == []


# --- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name", "content_type"),
    [("JPEG", "me.jpg", "image/jpeg"), ("PNG", "me.png", "image/png"), ("WEBP", "me.webp", "image/webp")],
)
def test_jpeg_png_and_webp_are_stored_as_a_256_pixel_webp(client_logged_in, customer, fmt, name, content_type):
    response = upload(client_logged_in, encode(photo(), fmt), name, content_type)

    assert response.status_code == 302
    assert response["Location"] == "/settings/profile/"
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Your new avatar is in place."]
    stored_name, data = stored_avatar(customer)
    assert_clean_webp(data)
    assert [p.name for p in stored_files()] == [Path(stored_name).name]
    page = client_logged_in.get("/settings/profile/").content.decode()
    assert f'src="{settings.MEDIA_URL}{stored_name}"' in page


def test_the_stored_avatar_is_served_as_webp_and_nothing_else_under_media(client_logged_in, customer):
    upload(client_logged_in, encode(photo(), "PNG"))
    name, data = stored_avatar(customer)
    (Path(settings.MEDIA_ROOT) / "avatars" / ("b" * 32 + ".html")).write_text("<script>alert(1)</script>")

    response = client_logged_in.get(settings.MEDIA_URL + name)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == data
    for path in ["avatars/" + "b" * 32 + ".html", "avatars/evil.webp", "avatars/../../pyproject.toml"]:
        assert client_logged_in.get(settings.MEDIA_URL + path).status_code == 404, path


def test_exif_is_removed_from_a_jpeg(client_logged_in, customer):
    original = jpeg_with_exif()
    with Image.open(io.BytesIO(original)) as image:  # the test image really carries the metadata
        assert image.getexif()[EXIF_MAKE] == "SpyCam Industries"

    upload(client_logged_in, original, "me.jpg", "image/jpeg")

    _, data = stored_avatar(customer)
    assert_clean_webp(data)
    assert b"SpyCam" not in data and b"Secret Lane" not in data


def test_the_exif_orientation_is_applied_before_the_metadata_is_dropped(client_logged_in, customer):
    sideways = Image.new("RGB", (200, 100), (255, 0, 0))
    sideways.paste((0, 0, 255), (100, 0, 200, 100))  # left half red, right half blue
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90° clockwise to display": the left half ends up on top

    upload(client_logged_in, encode(sideways, "JPEG", exif=exif, quality=95), "me.jpg", "image/jpeg")

    _, data = stored_avatar(customer)
    with Image.open(io.BytesIO(data)) as image:
        top, bottom = image.convert("RGB").getpixel((128, 10)), image.convert("RGB").getpixel((128, 245))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_png_with_html_appended_is_accepted_but_only_its_pixels_are_kept(client_logged_in, customer):
    polyglot = encode(photo(), "PNG") + b"<html><body><script>alert(document.cookie)</script></body></html>"

    response = upload(client_logged_in, polyglot, "me.png", "image/png")

    assert response.status_code == 302
    _, data = stored_avatar(customer)
    assert_clean_webp(data)
    assert b"<html" not in data and b"<script" not in data


def test_jpeg_comment_with_markup_is_not_kept(client_logged_in, customer):
    original = encode(photo(), "JPEG", comment=b"<script>alert(1)</script>")
    assert b"<script>" in original

    upload(client_logged_in, original, "me.jpg", "image/jpeg")

    _, data = stored_avatar(customer)
    assert b"<script" not in data


def test_a_transparent_png_keeps_its_transparency(client_logged_in, customer):
    upload(client_logged_in, encode(Image.new("RGBA", (300, 300), (0, 128, 0, 0)), "PNG"))

    _, data = stored_avatar(customer)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGBA"
        assert image.getpixel((128, 128))[3] == 0


def test_a_16_bit_greyscale_png_keeps_its_shade_of_grey(client_logged_in, customer):
    """16-bit greyscale PNGs (scanners, photo editors) open in mode I;16; mid-grey must not turn white."""
    mid_grey = Image.new("I;16", (300, 300), 32768)

    response = upload(client_logged_in, encode(mid_grey, "PNG"))

    assert response.status_code == 302
    _, data = stored_avatar(customer)
    with Image.open(io.BytesIO(data)) as image:
        red, green, blue = image.convert("RGB").getpixel((128, 128))
    assert 112 <= red <= 144 and red == green == blue, (red, green, blue)


# --- refused -------------------------------------------------------------------------------

REFUSED_UPLOADS = {
    "plain text named .png": (b"hello, I am not a picture\n" * 10, "avatar.png", "image/png", AVATAR_WRONG_TYPE),
    "HTML renamed to .png": (
        b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>",
        "avatar.png",
        "image/png",
        AVATAR_WRONG_TYPE,
    ),
    "SVG with a script": (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script>'
        b'<rect width="10" height="10"/></svg>',
        "avatar.svg",
        "image/svg+xml",
        AVATAR_WRONG_TYPE,
    ),
    "GIF": (encode(photo(), "GIF"), "avatar.gif", "image/gif", AVATAR_WRONG_TYPE),
    "BMP named .jpg": (encode(photo(), "BMP"), "avatar.jpg", "image/jpeg", AVATAR_WRONG_TYPE),
    "PNG signature only": (b"\x89PNG\r\n\x1a\n", "avatar.png", "image/png", AVATAR_UNREADABLE),
    "JPEG signature then garbage": (b"\xff\xd8\xff" + b"\x00" * 200, "avatar.jpg", "image/jpeg", AVATAR_UNREADABLE),
}


@pytest.mark.parametrize(
    ("content", "name", "content_type", "message"), REFUSED_UPLOADS.values(), ids=REFUSED_UPLOADS.keys()
)
def test_files_that_are_not_jpeg_png_or_webp_are_refused(
    client_logged_in, customer, content, name, content_type, message
):
    response = upload(client_logged_in, content, name, content_type)

    assert_refused(response, customer, message, before="")
    assert "The image" in response.content.decode() or "Choose a JPEG" in response.content.decode()


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "cut.png"), ("JPEG", "cut.jpg")])
def test_a_truncated_image_is_refused_as_unreadable(client_logged_in, customer, fmt, name):
    whole = encode(noise(), fmt, **({"quality": 95} if fmt == "JPEG" else {}))

    response = upload(client_logged_in, whole[: len(whole) // 2], name, f"image/{fmt.lower()}")

    assert_refused(response, customer, AVATAR_UNREADABLE, before="")


def test_an_empty_file_is_refused(client_logged_in, customer):
    response = upload(client_logged_in, b"")

    assert response.status_code == 400
    assert response.context["avatar_form"].errors["avatar"] == ["The submitted file is empty."]
    assert stored_files() == []


def test_a_post_without_a_file_is_refused(client_logged_in, customer):
    response = client_logged_in.post(UPLOAD_URL, {})

    assert response.status_code == 400
    assert response.context["avatar_form"].errors["avatar"] == ["This field is required."]


def test_a_file_over_the_size_limit_is_refused_before_decoding(client_logged_in, customer):
    # A perfectly decodable PNG padded past the limit: only the size check can refuse it.
    small_png = encode(photo((64, 64)), "PNG")
    oversized = small_png + b"\x00" * (settings.AVATAR_MAX_BYTES + 1 - len(small_png))
    assert len(oversized) == settings.AVATAR_MAX_BYTES + 1

    response = upload(client_logged_in, oversized)

    assert_refused(response, customer, str(AVATAR_TOO_LARGE) % {"limit": 2}, before="")


def test_the_size_message_states_a_limit_below_one_megabyte_correctly(client_logged_in, customer, settings):
    """AVATAR_MAX_BYTES comes from the environment; 512 kB must not be announced as "0 MB"."""
    settings.AVATAR_MAX_BYTES = 512 * 1024
    small_png = encode(photo((64, 64)), "PNG")

    response = upload(client_logged_in, small_png + b"\x00" * (settings.AVATAR_MAX_BYTES + 1 - len(small_png)))

    assert response.status_code == 400
    [message] = response.context["avatar_form"].errors["avatar"]
    assert " 0 MB" not in message and "0.5 MB" in message, message


def test_a_file_exactly_at_the_size_limit_is_accepted(client_logged_in, customer):
    small_png = encode(photo((64, 64)), "PNG")
    at_limit = small_png + b"\x00" * (settings.AVATAR_MAX_BYTES - len(small_png))

    response = upload(client_logged_in, at_limit)

    assert response.status_code == 302
    assert_clean_webp(stored_avatar(customer)[1])


def test_an_image_with_too_many_pixels_is_refused_with_its_size(client_logged_in, customer):
    response = upload(client_logged_in, png_declaring(5000, 4000, with_pixels=False))

    message = str(AVATAR_TOO_MANY_PIXELS) % {"width": 5000, "height": 4000, "limit": 4.2}
    assert_refused(response, customer, message, before="")


def test_a_png_just_past_the_pixel_limit_is_refused_and_one_at_it_is_accepted(client_logged_in, customer):
    assert settings.AVATAR_MAX_PIXELS == 2048 * 2048

    refused = upload(client_logged_in, png_declaring(2049, 2048, with_pixels=True))
    message = str(AVATAR_TOO_MANY_PIXELS) % {"width": 2049, "height": 2048, "limit": 4.2}
    assert_refused(refused, customer, message, before="")

    assert upload(client_logged_in, png_declaring(2048, 2048, with_pixels=True)).status_code == 302


def test_a_phone_photo_jpeg_of_48_megapixels_is_accepted_decoded_at_a_reduced_scale(client_logged_in, customer):
    """8000×6000 pixels: a JPEG decodes at 1/8 scale (1000×750), well within the limit."""
    big = encode(photo((8000, 6000)), "JPEG", quality=60)

    response = upload(client_logged_in, big, "phone.jpg", "image/jpeg")

    assert response.status_code == 302
    assert_clean_webp(stored_avatar(customer)[1])


def test_a_decompression_bomb_is_refused_without_decoding_it(client_logged_in, customer):
    """20000×20000 pixels in about 50 kB: decoding it would take 400 MB."""
    bomb = png_declaring(20_000, 20_000, with_pixels=True)
    assert len(bomb) < 200_000
    # tracemalloc sees Python's own allocations (say, reading the upload whole); Pillow's pixel
    # buffers come from malloc, which only the process's peak resident size shows.
    peak_rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        response = upload(client_logged_in, bomb)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    peak_rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_rss_before_kb) / 1024

    message = str(AVATAR_BOMB) % {"limit": 4.2}
    assert_refused(response, customer, message, before="")
    assert python_peak < 20 * 1024 * 1024, python_peak
    assert peak_rss_growth_mb < 100, peak_rss_growth_mb


def test_a_bomb_header_without_any_pixel_data_gets_the_pixel_message_not_unreadable(client_logged_in, customer):
    """Had the pixels been decoded, the missing image data would have made it 'unreadable'."""
    response = upload(client_logged_in, png_declaring(20_000, 20_000, with_pixels=False))

    message = str(AVATAR_BOMB) % {"limit": 4.2}
    assert_refused(response, customer, message, before="")


def test_a_refused_upload_keeps_the_current_avatar(client_logged_in, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_logged_in, encode(photo(), "PNG"))
    current, _ = stored_avatar(customer)

    response = upload(client_logged_in, b"<html></html>", "a.png")

    assert response.status_code == 400
    assert stored_avatar(customer)[0] == current
    assert [p.name for p in stored_files()] == [Path(current).name]


# --- replace and remove --------------------------------------------------------------------


def test_replacing_the_avatar_deletes_the_old_file(client_logged_in, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_logged_in, encode(photo(color=(255, 0, 0)), "PNG"))
    first, _ = stored_avatar(customer)

    with django_capture_on_commit_callbacks(execute=True):
        upload(client_logged_in, encode(photo(color=(0, 0, 255)), "JPEG"), "new.jpg", "image/jpeg")

    second, _ = stored_avatar(customer)
    assert second != first
    assert not (Path(settings.MEDIA_ROOT) / first).exists()
    assert [p.name for p in stored_files()] == [Path(second).name]


def test_remove_avatar_clears_it_and_deletes_the_file(client_logged_in, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_logged_in, encode(photo(), "PNG"))
    name, _ = stored_avatar(customer)

    with django_capture_on_commit_callbacks(execute=True):
        response = client_logged_in.post(REMOVE_URL)

    assert response.status_code == 302
    assert response["Location"] == "/settings/profile/"
    assert [str(m) for m in get_messages(response.wsgi_request)][-1] == "Your avatar was removed."
    assert Customer.objects.get(pk=customer.pk).avatar.name == ""
    assert not (Path(settings.MEDIA_ROOT) / name).exists()
    assert stored_files() == []


def test_remove_avatar_needs_a_post(client_logged_in, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_logged_in, encode(photo(), "PNG"))
    name, _ = stored_avatar(customer)

    assert client_logged_in.get(REMOVE_URL).status_code == 405
    assert client_logged_in.get(UPLOAD_URL).status_code == 405
    assert stored_avatar(customer)[0] == name


def test_removing_my_avatar_leaves_other_customers_avatars_alone(
    client, customer, other_customer, django_capture_on_commit_callbacks
):
    backend = "accounts.backends.PortalAuthenticationBackend"
    client.force_login(other_customer.user, backend=backend)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, encode(photo(), "PNG"))
    others, _ = stored_avatar(other_customer)
    client.force_login(customer.user, backend=backend)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(REMOVE_URL, {"customer": other_customer.pk, "id": other_customer.pk})

    assert stored_avatar(other_customer)[0] == others
    assert (Path(settings.MEDIA_ROOT) / others).exists()
