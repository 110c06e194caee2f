"""portal.forms: the renderer that renders every form through the project's templates, and LongSelect."""

import pytest
from django import forms
from django.forms.renderers import get_default_renderer
from django.utils import translation

from accounts.forms import ContactForm, ProfileForm
from portal.forms import LongSelect, PortalFormRenderer

CHOICES = [("", "---------"), ("a", "Apple & pear"), ("b", "<Banana>"), ("c", "Cherry")]


class Pick(forms.Form):
    fruit = forms.ChoiceField(choices=CHOICES, required=False)
    long = forms.ChoiceField(choices=CHOICES, required=False, widget=LongSelect(attrs={"autocomplete": "off"}))


def _fruit(form, name):
    return str(form[name]).replace(f'name="{name}"', 'name="x"').replace(f'id="id_{name}"', 'id="x"')


@pytest.mark.parametrize("value", [None, "", "b", "zzz"])
def test_a_long_select_renders_what_a_select_renders(value):
    class Both(forms.Form):
        fruit = forms.ChoiceField(choices=CHOICES, widget=forms.Select(attrs={"autocomplete": "off"}))
        long = forms.ChoiceField(choices=CHOICES, widget=LongSelect(attrs={"autocomplete": "off"}))

    form = Both(initial={"fruit": value, "long": value})

    assert _fruit(form, "long") == _fruit(form, "fruit")
    assert ("selected" in _fruit(form, "long")) == (value in {None, "", "b"})


def test_a_long_select_renders_its_options_once_then_only_the_chosen_one(monkeypatch):
    renderer = PortalFormRenderer()
    str(Pick(renderer=renderer, initial={"long": "a"})["long"])
    rendered = []
    original = renderer.render
    monkeypatch.setattr(
        renderer, "render", lambda name, *args, **kwargs: rendered.append(name) or original(name, *args, **kwargs)
    )

    html = str(Pick(renderer=renderer, initial={"long": "c"})["long"])

    assert rendered == ["django/forms/widgets/select_option.html", "portal/widgets/long_select.html"]
    assert '<option value="c" selected>Cherry</option>' in html
    assert '<option value="a">Apple &amp; pear</option>' in html and "&lt;Banana&gt;" in html


def test_country_names_follow_the_language(customer):
    with translation.override("de"):
        german = str(ContactForm(instance=customer, renderer=get_default_renderer())["country"])
    english = str(ContactForm(instance=customer, renderer=get_default_renderer())["country"])

    assert ">Deutschland</option>" in german and ">Germany</option>" in english


def test_the_time_zone_select_marks_the_customers_zone(customer):
    customer.time_zone = "Europe/Berlin"

    html = str(ProfileForm(instance=customer)["time_zone"])

    assert html.count("selected") == 1
    assert '<option value="Europe/Berlin" selected>Europe/Berlin</option>' in html
    assert html.startswith('<select name="time_zone"') and 'id="id_time_zone"' in html


def test_every_form_renders_through_the_projects_field_partial(customer):
    html = str(ProfileForm(instance=customer))

    assert '<div class="field">' in html and '<label for="id_time_zone">Time zone</label>' in html
    assert 'aria-describedby="id_language_helptext"' in html and 'id="id_language_helptext"' in html
