"""The business's brand colour and the palette the stylesheet takes from it, kept readable (WCAG AA).

portal.css draws links, buttons and the current page's highlight in `--accent`, and on a light screen
the highlight's background is `--accent-soft`; a brand colour replaces both there, and on a dark screen
`--accent` is the brand colour lightened (mixed with white as CSS `color-mix(in srgb, …)` would). A
colour is accepted only if every pairing the stylesheet makes of it has a contrast of at least 4.5:1.
"""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

BRAND_COLOUR_FORMAT = _("Enter the colour as # and six hexadecimal digits, e.g. #3b5bdb.")
BRAND_COLOUR_TOO_LIGHT = _(
    "This colour is too light for white button text and links: choose a darker one "
    "(it has a contrast of %(contrast).1f:1 where %(needed).1f:1 is needed)."
)

MIN_CONTRAST = 4.5  # WCAG 2.x AA for normal text
_HEX = re.compile(r"#[0-9a-fA-F]{6}")

# The stylesheet's own colours that the accent meets (portal/static/css/portal.css).
WHITE = "#ffffff"
LIGHT_BACKGROUND = "#f6f7f9"
DARK_BACKGROUND, DARK_SURFACE, DARK_ACCENT_SOFT = "#0f1115", "#181b21", "#222a45"
DARK_ACCENT_TEXT = "#0f1115"
SOFT_SHARE = 0.12  # of the brand colour in the light highlight's background
DARK_SHARE = 0.40  # of the brand colour in the dark screen's accent; the rest is white


@dataclass(frozen=True)
class BrandPalette:
    accent: str
    accent_soft: str
    accent_dark: str


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _mix(colour: str, other: str, share: float) -> str:
    """`share` of colour and the rest of other, channel by channel in sRGB."""
    mixed = (round(a * share + b * (1 - share)) for a, b in zip(_rgb(colour), _rgb(other), strict=True))
    return "#{:02x}{:02x}{:02x}".format(*mixed)


def _luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in _rgb(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two colours, 1 to 21."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def brand_palette(colour: str) -> BrandPalette:
    colour = colour.lower()
    return BrandPalette(
        accent=colour, accent_soft=_mix(colour, WHITE, SOFT_SHARE), accent_dark=_mix(colour, WHITE, DARK_SHARE)
    )


def brand_colour_validate(value: str) -> None:
    """Refuse anything but #rrggbb, and a colour that some pairing in the stylesheet would make hard to read."""
    if not _HEX.fullmatch(value or ""):
        raise ValidationError(BRAND_COLOUR_FORMAT, code="brand_colour_format")
    palette = brand_palette(value)
    pairs = [
        (WHITE, palette.accent),  # button text on the colour, links on a card
        (LIGHT_BACKGROUND, palette.accent),  # links on the page background
        (palette.accent_soft, palette.accent),  # the current page in the settings navigation
        (DARK_ACCENT_TEXT, palette.accent_dark),
        (DARK_BACKGROUND, palette.accent_dark),
        (DARK_SURFACE, palette.accent_dark),
        (DARK_ACCENT_SOFT, palette.accent_dark),
    ]
    lowest = min(contrast(background, foreground) for background, foreground in pairs)
    if lowest < MIN_CONTRAST:
        raise ValidationError(
            BRAND_COLOUR_TOO_LIGHT, code="brand_colour_contrast", params={"contrast": lowest, "needed": MIN_CONTRAST}
        )
