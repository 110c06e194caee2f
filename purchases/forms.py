from django import forms
from django.utils.translation import gettext_lazy as _


class PurchaseFilterForm(forms.Form):
    """The purchases page's search: by offer, year and receipt number (a GET form; all optional)."""

    offer = forms.TypedChoiceField(label=_("Offer"), required=False, coerce=int, empty_value=None)
    year = forms.TypedChoiceField(label=_("Year"), required=False, coerce=int, empty_value=None)
    number = forms.CharField(label=_("Receipt number"), required=False, max_length=40, strip=True)

    def __init__(self, *args, offers, years, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["offer"].choices = [("", _("All offers")), *offers]
        self.fields["year"].choices = [("", _("All years")), *((year, str(year)) for year in years)]

    @property
    def filters(self) -> dict:
        """The selector's keyword arguments; an invalid choice is ignored rather than shown as an error."""
        self.is_valid()  # cleaned_data keeps the fields that are valid
        data = self.cleaned_data
        return {"offer_id": data.get("offer"), "year": data.get("year"), "receipt_number": data.get("number") or ""}
