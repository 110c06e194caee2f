from django import forms
from django.utils.translation import gettext_lazy as _

from .plans import PAUSE_CYCLES, PAUSE_CYCLES_INVALID


class PauseForm(forms.Form):
    """The customer's pause: how many billing periods to skip (the page writes the radios itself)."""

    cycles = forms.TypedChoiceField(
        label=_("How long"),
        choices=[(n, n) for n in PAUSE_CYCLES],
        coerce=int,
        error_messages={"invalid_choice": PAUSE_CYCLES_INVALID, "required": PAUSE_CYCLES_INVALID},
    )
