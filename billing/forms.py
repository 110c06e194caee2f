from django import forms
from django.utils.translation import gettext_lazy as _

from .models import CancellationReason
from .retention import COMMENT_MAX_LENGTH


class CancelForm(forms.Form):
    """Why the customer is leaving: both optional, so cancelling never takes more than this one page."""

    reason = forms.ChoiceField(
        label=_("Why are you cancelling?"),
        choices=[("", _("I would rather not say")), *CancellationReason.choices],
        required=False,
    )
    comment = forms.CharField(
        label=_("Anything else you would like to tell us?"),
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Optional. Read by the team, never shown to anyone else."),
    )
