from django import template

from portal import forms
from portal.forms import field_fragment_key

register = template.Library()


@register.filter
def fragment_key(field) -> str:
    """A field's cache key for {% cache %} (portal.forms.field_fragment_key); "" to render it each time."""
    return field_fragment_key(field)


@register.filter
def form_fragment_key(form) -> str:
    """An unbound form's cache key for {% cache %} (portal.forms.form_fragment_key); "" to render it each time."""
    return forms.form_fragment_key(form)
