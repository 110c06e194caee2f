from functools import lru_cache
from pathlib import Path

from django import forms
from django.conf import settings
from django.forms.renderers import TemplatesSetting, get_default_renderer
from django.utils.choices import CallableChoiceIterator, normalize_choices
from django.utils.safestring import mark_safe
from django.utils.translation import get_language

from . import formmarkup

DJANGO_FORM_TEMPLATES = Path(forms.__file__).resolve().parent / "templates"
# Django's widget templates that are nothing but {% include "django/forms/widgets/input.html" %}.
INPUT_WIDGETS = ("checkbox", "color", "date", "datetime", "email", "file", "hidden", "number", "password")
INPUT_WIDGETS += ("search", "tel", "text", "time", "url")


class PortalFormRenderer(TemplatesSetting):
    """Render every form, ours and allauth's, through the project's field partial.

    The templates a form field goes through (the field partial, its label, widget, attributes and error
    list: six or seven renders a field, two for each option of a select) have equivalents in Python in
    portal.formmarkup that return the same markup in a tenth of the time. They are used only while the
    loaders find the very template they were written from (a template overriding one of them is
    rendered as usual), and tests/portal/test_form_markup.py renders every form both ways.
    """

    form_template_name = "partials/form.html"
    field_template_name = "partials/form_field.html"

    def __init__(self):
        super().__init__()
        project = Path(settings.PORTAL_DIR) / "templates"
        attrs = "django/forms/widgets/attrs.html"
        input_tag = (formmarkup.input_tag, "django/forms/widgets/input.html", attrs)
        # Each template with its Python, and every template that Python stands for (its includes too).
        self._markup = {
            "partials/form.html": (formmarkup.form_fields,),
            "partials/form_field.html": (formmarkup.field_group,),
            "django/forms/label.html": (formmarkup.label_tag, "django/forms/attrs.html"),
            "django/forms/errors/list/default.html": (formmarkup.error_list, "django/forms/errors/list/ul.html"),
            "django/forms/errors/list/ul.html": (formmarkup.error_list,),
            "django/forms/widgets/select.html": (self._select, attrs),
            "django/forms/widgets/select_option.html": (formmarkup.option_tag, attrs),
            "django/forms/widgets/textarea.html": (formmarkup.textarea_tag, attrs),
            **{f"django/forms/widgets/{name}.html": input_tag for name in INPUT_WIDGETS},
        }
        self._folders = {"partials/form.html": project, "partials/form_field.html": project}
        self._writes_cache: dict[str, bool] = {}

    def render(self, template_name, context, request=None):
        markup = self._markup.get(template_name)
        if markup is not None and self._writes(template_name):
            return markup[0](context).strip()
        return super().render(template_name, context, request)

    def writes_selects(self) -> bool:
        """Whether selects and their options are written in Python (no template overrides theirs)."""
        return self._writes("django/forms/widgets/select.html") and self._writes(
            "django/forms/widgets/select_option.html"
        )

    def _select(self, context) -> str:
        return formmarkup.select_tag(context, self.render)

    def _writes(self, template_name: str) -> bool:
        """Whether the loaders find this template, and those it includes, where its Python was written from."""
        writes = self._writes_cache.get(template_name)
        if writes is None:
            _write, *includes = self._markup[template_name]
            writes = self._writes_cache[template_name] = all(
                self._original(name) for name in [template_name, *includes]
            )
        return writes

    def _original(self, template_name: str) -> bool:
        folder = self._folders.get(template_name, DJANGO_FORM_TEMPLATES)
        return Path(self.get_template(template_name).origin.name).resolve() == (folder / template_name).resolve()


class LongSelect(forms.Select):
    """A select of hundreds of options (time zones, countries), rendered as Select renders it.

    The options' markup is made once per process for each language and list of choices, and a render
    only marks the chosen option: the 600 options of the time-zone select took 3 ms a page to build
    and render, every time the same. The choices are read once per render (reading them is most of
    what is left: Django normalises each choice on every pass)."""

    def use_required_attribute(self, initial):
        # Select's rule (`required` only when the first option is empty), on the choices read for the render.
        if self.allow_multiple_selected:
            return super().use_required_attribute(initial)
        choices = self._choices_read()
        return not self.is_hidden and bool(choices) and self._choice_has_empty_value(choices[0])

    def _choices_read(self) -> tuple:
        read = getattr(self, "_read", None)
        if read is None or read[0] is not self.choices:
            read = self._read = (self.choices, _choices_tuple(self.choices))
        return read[1]

    def render(self, name, value, attrs=None, renderer=None):
        renderer = renderer or get_default_renderer()
        if (
            self.allow_multiple_selected
            or not isinstance(renderer, PortalFormRenderer)
            or not renderer.writes_selects()
        ):
            return super().render(name, value, attrs, renderer)
        try:
            options = _long_select_options(get_language(), self._choices_read())
        except TypeError:  # grouped choices (lists inside) are not hashable: render them the usual way
            return super().render(name, value, attrs, renderer)
        # Widget.get_context, not Select's: that one would build the options again.
        widget = forms.Widget.get_context(self, name, value, attrs)["widget"]
        return mark_safe(
            f'<select name="{formmarkup.text(widget["name"])}"{formmarkup.attrs(widget["attrs"])}>'
            f"{options.markup(widget['value'])}\n</select>"
        )


# A callable's choices as CallableChoiceIterator normalises them, kept while the callable returns the very
# same list or tuple (time_zone_choices() is cached, and never changed): normalising 600 time zones on every
# page took 0.3 ms.
_normalized: dict = {}


def _choices_tuple(choices) -> tuple:
    if not isinstance(choices, CallableChoiceIterator):
        return tuple(choices)
    listed = choices.func()
    if not isinstance(listed, (list, tuple)):  # an iterable object may give other choices each time (by language)
        return tuple(normalize_choices(listed))
    known = _normalized.get(choices.func)
    if known is None or known[0] is not listed:
        known = _normalized[choices.func] = (listed, tuple(normalize_choices(listed)))
    return known[1]


class _Options:
    """The markup of a select's options, each as it reads unselected and selected."""

    def __init__(self, choices):
        self.plain, self.selected, self.index = [], [], {}
        for position, (value, label) in enumerate(choices):
            value = "" if value is None else value
            option = {"value": value, "label": label, "attrs": {}}
            self.plain.append(f"\n  {formmarkup.option_tag({'widget': option})}\n")
            option["attrs"] = {"selected": True}
            self.selected.append(f"\n  {formmarkup.option_tag({'widget': option})}\n")
            self.index.setdefault(str(value), position)
        self.all_plain = "".join(self.plain)

    def markup(self, values: list[str]) -> str:
        """All options, the first whose value is among `values` marked selected (as Select.optgroups does)."""
        chosen = min((self.index[value] for value in values if value in self.index), default=None)
        if chosen is None:
            return self.all_plain
        return "".join(self.plain[:chosen]) + self.selected[chosen] + "".join(self.plain[chosen + 1 :])


@lru_cache(maxsize=32)
def _long_select_options(language: str | None, choices: tuple) -> _Options:
    if any(isinstance(label, (list, tuple)) for _value, label in choices):
        raise TypeError("grouped choices")
    return _Options(choices)
