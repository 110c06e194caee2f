"""The form renderer writes the stock form templates and our form partials in Python (portal.formmarkup) and
caches the options of long selects (portal.forms.LongSelect): the markup must be exactly what the templates
make, for every form the portal shows, in each language, unbound and with errors."""

import datetime
import re
from decimal import Decimal

import pytest
from allauth.account import forms as allauth_forms
from django import forms
from django.forms.renderers import get_default_renderer
from django.test import RequestFactory
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from accounts.forms import (
    AvatarForm,
    ContactForm,
    HubLinkRequestForm,
    ProfileForm,
    SocialForm,
    with_custom_fields,
)
from accounts.models import CustomField, CustomFieldType
from billing.staff import CancelPaymentsForm, PauseForm, RefundForm
from portal.forms import LongSelect, PortalFormRenderer
from tests.factories import UserFactory

LANGUAGES = ["en", "de"]


class TemplatesOnly(PortalFormRenderer):
    """The renderer as it was: every template rendered by the template engine."""

    def render(self, template_name, context, request=None):
        return super(PortalFormRenderer, self).render(template_name, context, request)

    def writes_selects(self):
        return False


def both_ways(make_form):
    """The form rendered whole and field by field, by the portal's renderer and by the templates."""
    rendered = []
    for renderer in (PortalFormRenderer(), TemplatesOnly()):
        form = make_form(renderer)
        form.is_bound and form.is_valid()
        parts = [str(form), form.as_p(), str(form.non_field_errors())]
        for field in form:
            parts += [field.as_field_group(), str(field), field.label_tag(), field.legend_tag(), str(field.errors)]
        rendered.append(parts)
    return rendered


@pytest.fixture(params=LANGUAGES)
def language(request):
    with translation.override(request.param):
        yield request.param


HOSTILE = "a \"quoted\" <b>bold</b> & 'apostrophe' ü"


def test_contact_form(customer, language):
    customer.full_name, customer.address_line2, customer.tax_id_type = HOSTILE, "Flat <2>", "gb_vat"
    fast, slow = both_ways(lambda renderer: ContactForm(instance=customer, renderer=renderer))
    assert fast == slow
    assert "selected>United Kingdom" in fast[0] or "selected>Vereinigtes Königreich" in fast[0]


def test_contact_form_with_errors(customer, language):
    data = {"full_name": "<x>", "phone": "abc", "tax_id_type": "gb_vat", "tax_id_value": "", "country": "ZZ"}
    fast, slow = both_ways(lambda renderer: ContactForm(data, instance=customer, renderer=renderer))
    assert fast == slow
    assert 'aria-invalid="true"' in fast[0]


def test_contact_form_with_custom_fields(customer, language, db):
    custom = [
        CustomField.objects.create(key="nickname", label="Nick <name>", help_text="Shown & used"),
        CustomField.objects.create(key="size", label="Size?", type=CustomFieldType.CHOICE, choices="S\nM\n<L>"),
        CustomField.objects.create(key="born", label="Born", type=CustomFieldType.DATE),
        CustomField.objects.create(key="height", label="Height", type=CustomFieldType.NUMBER),
    ]
    customer.custom_field_values = {"nickname": "Bo & Co", "size": "<L>", "born": "2000-01-02", "height": "1.5"}
    form_class = with_custom_fields(ContactForm, custom)
    assert (
        both_ways(lambda renderer: form_class(instance=customer, renderer=renderer))[0]
        == both_ways(lambda renderer: form_class(instance=customer, renderer=renderer))[1]
    )
    data = {"custom_size": "XL", "custom_height": "tall", "country": "GB"}
    fast, slow = both_ways(lambda renderer: form_class(data, instance=customer, renderer=renderer))
    assert fast == slow


@pytest.mark.parametrize("data", [None, {"language": "xx", "time_zone": "Nowhere/Else", "notify_marketing": "on"}])
def test_profile_form(customer, language, data):
    customer.time_zone = "Europe/Berlin"
    fast, slow = both_ways(lambda renderer: ProfileForm(data, instance=customer, renderer=renderer))
    assert fast == slow
    assert '<option value="Europe/Berlin" selected>Europe/Berlin</option>' in fast[0] or data


@pytest.mark.parametrize(
    "data", [None, {"bio": "one\n<script>two</script> &", "website_url": "http://x.example", "x_username": "@@"}]
)
def test_social_form(customer, language, data):
    customer.bio, customer.directory_opt_in = HOSTILE, True
    fast, slow = both_ways(lambda renderer: SocialForm(data, instance=customer, renderer=renderer))
    assert fast == slow


def _same_attempt(form):
    form.fields["attempt"].initial = "0" * 32  # a fresh random one in each form otherwise
    return form


def test_avatar_hub_link_and_staff_forms(language, db):
    from tests.factories import RecordedPurchaseFactory

    purchase = RecordedPurchaseFactory()
    for make in [
        lambda renderer: AvatarForm(renderer=renderer),
        lambda renderer: AvatarForm({}, {}, renderer=renderer),
        lambda renderer: HubLinkRequestForm({"email": "not <an> email"}, renderer=renderer),
        lambda renderer: _same_attempt(RefundForm(purchase=purchase, renderer=renderer)),
        lambda renderer: RefundForm({"amount": "-1", "reason": ""}, purchase=purchase, renderer=renderer),
        lambda renderer: CancelPaymentsForm(renderer=renderer),
        lambda renderer: PauseForm({"resumes_on": "2000-01-01"}, renderer=renderer),
    ]:
        fast, slow = both_ways(make)
        assert fast == slow


def test_allauth_forms(language, db):
    user = UserFactory()
    request = RequestFactory().get("/")
    request.user = user
    request.session = {}
    makers = [
        lambda renderer: allauth_forms.LoginForm(request=request, renderer=renderer),
        lambda renderer: allauth_forms.LoginForm({"login": "x"}, request=request, renderer=renderer),
        lambda renderer: allauth_forms.SignupForm(renderer=renderer),
        lambda renderer: allauth_forms.SignupForm({"email": "a@", "password1": "1"}, renderer=renderer),
        lambda renderer: allauth_forms.ResetPasswordForm(renderer=renderer),
        lambda renderer: allauth_forms.ChangePasswordForm(user=user, renderer=renderer),
        lambda renderer: allauth_forms.ChangePasswordForm(
            data={"oldpassword": "no", "password1": "short", "password2": "other"}, user=user, renderer=renderer
        ),
        lambda renderer: allauth_forms.SetPasswordForm(user=user, renderer=renderer),
        lambda renderer: allauth_forms.AddEmailForm(user=user, renderer=renderer),
        lambda renderer: allauth_forms.RequestLoginCodeForm(renderer=renderer),
    ]
    for make in makers:
        fast, slow = both_ways(make)
        assert fast == slow


class EveryWidget(forms.Form):
    """The stock widgets with the attribute and value shapes the templates treat specially."""

    required_css_class = "required"
    error_css_class = "error"

    text = forms.CharField(
        label="Text?",
        help_text=mark_safe("<em>safe</em> help"),
        widget=forms.TextInput(attrs={"data-on": True, "data-off": False, "data-n": 3, "data-safe": mark_safe("<&>")}),
    )
    number = forms.DecimalField(localize=True, initial=Decimal("1234.5"))
    integer = forms.IntegerField(initial=7, label_suffix=" →")
    date = forms.DateField(initial=datetime.date(2026, 11, 21), widget=forms.DateInput(attrs={"type": "date"}))
    moment = forms.DateTimeField(initial=datetime.datetime(2026, 11, 21, 8, 30), required=False)
    clock = forms.TimeField(initial=datetime.time(8, 30), required=False)
    email = forms.EmailField(initial="a&b@example.com", disabled=True)
    url = forms.URLField(required=False)
    secret = forms.CharField(widget=forms.PasswordInput(render_value=True), initial="p<a>ss")
    hidden = forms.CharField(widget=forms.HiddenInput, initial='"hidden"')
    shown_initial = forms.CharField(show_hidden_initial=True, initial="x")
    tick = forms.BooleanField(initial=True, required=False)
    untick = forms.BooleanField(required=False)
    tri = forms.NullBooleanField(required=False)
    note = forms.CharField(widget=forms.Textarea, initial="line <1>\nline & 2")
    empty_note = forms.CharField(widget=forms.Textarea, required=False)
    plain = forms.ChoiceField(choices=[("", "—"), (1, "One"), ("2", "<Two>"), (None, "None")], initial=1)
    grouped = forms.ChoiceField(
        choices=[("Fruit", [("a", "Apple"), ("b", "Banana")]), ("c", "Carrot")], initial="b", required=False
    )
    several = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")], initial=["a", "b"], required=False)
    radio = forms.ChoiceField(choices=[("a", "A"), ("b", "B")], widget=forms.RadioSelect, required=False)
    checks = forms.MultipleChoiceField(
        choices=[("a", "A"), ("b", "B")], widget=forms.CheckboxSelectMultiple, required=False
    )
    long = forms.ChoiceField(
        choices=[("", "---------"), *((f"v{n}", f"Value <{n}>") for n in range(300)), ("v7", "again")],
        initial="v7",
        widget=LongSelect(attrs={"autocomplete": "off", "data-x": True}),
    )
    long_grouped = forms.ChoiceField(
        choices=[("G", [("a", "A")]), ("b", "B")], widget=LongSelect, required=False, initial="a"
    )
    file = forms.FileField(required=False)
    split = forms.SplitDateTimeField(required=False)

    def clean(self):
        raise forms.ValidationError(["Form-wide <problem>", "and another"])


@pytest.mark.parametrize("data", [None, {"text": "", "number": "x", "plain": "9", "long": "v299", "tick": "on"}])
def test_every_stock_widget(language, data):
    fast, slow = both_ways(lambda renderer: EveryWidget(data, renderer=renderer))
    assert fast == slow


def test_a_long_select_marks_the_first_matching_option_only():
    html = str(EveryWidget(renderer=PortalFormRenderer())["long"])

    assert html.count(" selected>") == 1
    assert '<option value="v7" selected>Value &lt;7&gt;</option>' in html


def test_a_template_the_project_overrides_is_rendered_by_it(settings, tmp_path):
    override = tmp_path / "django" / "forms" / "widgets"
    override.mkdir(parents=True)
    (override / "input.html").write_text('<input data-overridden name="{{ widget.name }}">')
    (override / "select_option.html").write_text("<option data-overridden>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]

    form = EveryWidget(renderer=PortalFormRenderer())

    assert str(form["text"]) == '<input data-overridden name="text">'
    assert "<option data-overridden>" in str(form["long"])  # a LongSelect's options too
    assert str(form["note"]).startswith('<textarea name="note"')  # not overridden: still written in Python


# --- Whole pages: what a customer or the creator gets, with the Python markup switched off and on ---

CSRF = re.compile(r'(name="csrfmiddlewaretoken" value=|nonce=)"[^"]+"')


def _page(client, path, **extra):
    response = client.get(path, **extra)
    assert response.status_code == 200, path
    return CSRF.sub(r'\1"…"', response.content.decode())


@pytest.fixture
def templates_only(monkeypatch):
    def switch_off():
        renderer = get_default_renderer()
        monkeypatch.setattr(renderer, "_markup", {})
        monkeypatch.setattr(renderer, "writes_selects", lambda: False)

    return switch_off


@pytest.mark.parametrize(
    "path", ["/settings/contact/", "/settings/profile/", "/settings/social/", "/settings/password/", "/accounts/email/"]
)
def test_settings_pages_are_the_same_as_with_templates(client_logged_in, templates_only, path):
    fast = [_page(client_logged_in, path, HTTP_ACCEPT_LANGUAGE=language) for language in LANGUAGES]
    templates_only()
    slow = [_page(client_logged_in, path, HTTP_ACCEPT_LANGUAGE=language) for language in LANGUAGES]

    assert fast == slow


def test_the_admin_contact_page_is_the_same_as_with_templates(client, customer, templates_only):
    client.force_login(UserFactory(is_staff=True, is_superuser=True, password=None))
    path = f"/admin/accounts/customer/{customer.pk}/change/"
    fast = _page(client, path)
    templates_only()

    assert _page(client, path) == fast


@pytest.mark.parametrize(
    "choices",
    [[], [("", "—"), ("a", "A")], [("a", "A"), ("", "—")], [(None, "none"), ("a", "A")], [("G", [("a", "A")])]],
)
@pytest.mark.parametrize("multiple", [False, True])
def test_a_long_select_asks_for_required_when_a_select_would(choices, multiple):
    select, long = forms.Select(choices=choices), LongSelect(choices=choices)
    select.allow_multiple_selected = long.allow_multiple_selected = multiple

    assert long.use_required_attribute("a") == select.use_required_attribute("a")


def test_a_long_select_follows_a_callables_new_choices():
    offered = [[("a", "A"), ("b", "B")]]

    class Pick(forms.Form):
        pick = forms.ChoiceField(choices=lambda: list(offered[0]), widget=LongSelect)

    assert "B</option>" in str(Pick(renderer=PortalFormRenderer())["pick"])
    offered[0] = [("a", "A"), ("c", "C")]
    html = str(Pick(renderer=PortalFormRenderer())["pick"])
    assert "C</option>" in html and "B</option>" not in html


LAZY_CHOICES = [("", "—"), ("yes", gettext_lazy("Yes")), ("no", gettext_lazy("No"))]


def test_a_long_select_with_a_constant_list_of_lazy_labels_speaks_each_language():
    class Pick(forms.Form):
        pick = forms.ChoiceField(choices=lambda: LAZY_CHOICES, widget=LongSelect)

    for language, yes in [("en", "Yes"), ("de", "Ja"), ("en", "Yes")]:
        with translation.override(language):
            fast = str(Pick(renderer=PortalFormRenderer())["pick"])
            slow = str(Pick(renderer=TemplatesOnly())["pick"])
        assert fast == slow
        assert f">{yes}</option>" in fast
