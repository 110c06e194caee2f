"""Image uploads (avatars and the business logo): refuse before decoding, then re-encode so nothing
but pixels is kept."""

import io
import uuid
import warnings

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps

from portal.errors import UserFacingError

# Magic numbers of the formats we accept; the client's content type and file name are ignored.
_SIGNATURES = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
}

AVATAR_TOO_LARGE = _("The image is larger than %(limit)s MB. Please choose a smaller file.")
AVATAR_WRONG_TYPE = _("Choose a JPEG, PNG or WebP image.")
AVATAR_TOO_MANY_PIXELS = _("The image is %(width)s × %(height)s pixels; the limit is %(limit)s megapixels.")
AVATAR_BOMB = _("The image has far too many pixels; the limit is %(limit)s megapixels.")
AVATAR_UNREADABLE = _("The image could not be read. It may be damaged or incomplete.")
AVATAR_EMPTY = _("The file is empty.")
UPLOAD_RATE_LIMITED = _("Too many uploads in a short time. Wait a few minutes, then try again.")


class AvatarError(UserFacingError):
    """Raised when an upload cannot be an avatar; its message may be shown to the customer."""


def _sniff_format(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for fmt, signatures in _SIGNATURES.items():
        if head.startswith(signatures):
            return fmt
    return None


def avatar_draft_size() -> tuple[int, int]:
    """The smallest size an avatar is decoded at: twice the stored square, so it is cropped from sharp pixels."""
    return (settings.AVATAR_SIZE * 2, settings.AVATAR_SIZE * 2)


def avatar_inspect(upload, *, draft_size: tuple[int, int] | None = None) -> str:
    """Check size, type and the pixels decoding would make, from the file's header only; return the format.

    A JPEG decodes at the smallest scale that still covers draft_size (an avatar's by default), so a large
    photo costs little and counts at that scale; other formats decode whole."""
    if upload.size == 0:
        raise AvatarError(AVATAR_EMPTY)
    if upload.size > settings.AVATAR_MAX_BYTES:
        raise AvatarError(AVATAR_TOO_LARGE, {"limit": f"{settings.AVATAR_MAX_BYTES / 1048576:g}"})
    upload.seek(0)
    fmt = _sniff_format(upload.read(16))
    upload.seek(0)
    if fmt is None:
        raise AvatarError(AVATAR_WRONG_TYPE)
    try:
        # Image.open reads the header only; pixels are decoded by load(), after the checks.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload, formats=[fmt]) as image:
                width, height = image.size
                if fmt == "JPEG":
                    image.draft("RGB", draft_size or avatar_draft_size())  # sets the scale; decodes nothing
                decoded = image.size[0] * image.size[1]
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise AvatarError(AVATAR_BOMB, {"limit": _megapixels()}) from None
    except (OSError, SyntaxError, ValueError):
        raise AvatarError(AVATAR_UNREADABLE) from None
    finally:
        upload.seek(0)
    if decoded > settings.AVATAR_MAX_PIXELS or width == 0 or height == 0:
        raise AvatarError(AVATAR_TOO_MANY_PIXELS, _pixel_params(width, height))
    return fmt


def _megapixels() -> str:
    return f"{round(settings.AVATAR_MAX_PIXELS / 1e6, 1):g}"


def _pixel_params(width, height):
    return {"width": width, "height": height, "limit": _megapixels()}


def _decode(upload, fmt: str, draft_size: tuple[int, int]) -> Image.Image:
    """Decode a checked upload to 8-bit RGB(A), upright; JPEGs at the smallest scale above draft_size."""
    try:
        with Image.open(upload, formats=[fmt]) as image:
            image.draft("RGB", draft_size)  # JPEG: decode at a reduced scale
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I"):  # 16/32-bit greyscale: scale to 8 bits, don't clip to white
                image = image.point(lambda value: value / 256).convert("L")
            return image.convert("RGBA" if image.mode in {"RGBA", "LA", "P", "PA"} else "RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise AvatarError(AVATAR_UNREADABLE) from None


def avatar_reencode(upload) -> ContentFile:
    """Decode a checked upload and re-encode it as a square WebP without metadata."""
    fmt = avatar_inspect(upload)
    size = settings.AVATAR_SIZE
    square = ImageOps.fit(_decode(upload, fmt, avatar_draft_size()), (size, size), method=Image.Resampling.LANCZOS)
    out = io.BytesIO()
    square.save(out, format="WEBP", quality=85, method=4)  # no exif= argument: metadata is dropped
    return ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.webp")


# The logo is drawn 40 × 16 mm on receipt PDFs and 48 px high in emails: this is ample for both.
LOGO_MAX_SIZE = (960, 384)


def logo_reencode(upload) -> ContentFile:
    """Check the business logo like an avatar, then keep its pixels only: a PNG within LOGO_MAX_SIZE.

    PNG rather than WebP because email clients and PDF readers all show it.
    """
    fmt = avatar_inspect(upload, draft_size=LOGO_MAX_SIZE)
    image = _decode(upload, fmt, LOGO_MAX_SIZE)
    image.thumbnail(LOGO_MAX_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return ContentFile(out.getvalue(), name=f"logo-{uuid.uuid4().hex[:12]}.png")
