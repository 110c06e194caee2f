from django import forms
from django.utils.translation import gettext_lazy as _

from purchases.models import Offer

from .models import CancellationReason
from .plans import PAUSE_CYCLES, PAUSE_CYCLES_INVALID, PLAN_NOT_SWITCHABLE, PLAN_PREVIEW_EXPIRED
from .retention import COMMENT_MAX_LENGTH


class PauseForm(forms.Form):
    """The customer's pause: how many billing periods to skip (the page writes the radios itself)."""

    cycles = forms.TypedChoiceField(
        label=_("How long"),
        choices=[(n, n) for n in PAUSE_CYCLES],
        coerce=int,
        error_messages={"invalid_choice": PAUSE_CYCLES_INVALID, "required": PAUSE_CYCLES_INVALID},
    )


class PlanChangeForm(forms.Form):
    """The confirmation of a previewed change of plan: the offer chosen and the preview's signed moment."""

    offer = forms.ModelChoiceField(
        queryset=Offer.objects.none(), error_messages={"invalid_choice": PLAN_NOT_SWITCHABLE}
    )
    token = forms.CharField(max_length=500, error_messages={"required": PLAN_PREVIEW_EXPIRED})

    def __init__(self, *args, offers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["offer"].queryset = Offer.objects.filter(pk__in=[offer.pk for offer in offers])


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
