from django import forms
from django.forms.renderers import TemplatesSetting, get_default_renderer
from django.utils.choices import CallableChoiceIterator
from django.utils.safestring import mark_safe
from django.utils.timezone import get_current_timezone_name
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class PortalFormRenderer(TemplatesSetting):
    """Render every form, ours and allauth's, with the project's form and field partials.

    Templates are found through settings.TEMPLATES, so a theme (PORTAL_THEME_DIR) may override these
    partials and Django's own widget templates (django/forms/widgets/…) as it overrides any page."""

    form_template_name = "partials/form.html"
    field_template_name = "partials/form_field.html"


class LongSelect(forms.Select):
    """A select of hundreds of options (time zones, countries) that renders them once per process and language.

    Select renders every option through its template on every page (600 time zones: 3 ms). This one
    renders them the same way, with the option template, the first time a language needs them, and then
    only the chosen option again. Its choices must be a list, or a function that returns the same list
    for the active language (as accounts.forms' country and time-zone lists do) — the rendered options
    are kept while it does."""

    template_name = "portal/widgets/long_select.html"

    def use_required_attribute(self, initial):
        # Select's rule (only when the first option is empty), without normalising every choice to find it.
        choices = self._choices_list()
        return not self.is_hidden and bool(choices) and self._choice_has_empty_value(choices[0])

    def render(self, name, value, attrs=None, renderer=None):
        renderer = renderer or get_default_renderer()
        # Widget's context, not Select's: that one would make all the options again.
        context = forms.Widget.get_context(self, name, value, attrs)
        options = self._rendered_options(renderer, name)
        chosen = next((options.index[value] for value in context["widget"]["value"] if value in options.index), None)
        if chosen is None:
            context["widget"]["options"] = options.unselected_html
        else:
            value, label = options.choices[chosen]
            selected = renderer.render(
                self.option_template_name, {"widget": self.create_option(name, value, label, True, chosen)}
            )
            context["widget"]["options"] = mark_safe(
                "".join(options.unselected[:chosen]) + f"\n  {selected}\n" + "".join(options.unselected[chosen + 1 :])
            )
        return mark_safe(renderer.render(self.template_name, context))

    def _choices_list(self) -> list:
        if isinstance(self.choices, CallableChoiceIterator):
            return self.choices.func()
        return self.choices

    def _rendered_options(self, renderer, name: str) -> "_RenderedOptions":
        listed = self._choices_list()
        # A function's list is known by its identity (the function returns the same one); a literal list is
        # copied with every form, so it is known by its content.
        by_identity = isinstance(self.choices, CallableChoiceIterator)
        key = (renderer, self.option_template_name, name, get_language(), id(listed) if by_identity else tuple(listed))
        rendered = _rendered.get(key)
        if rendered is None or (by_identity and rendered.listed is not listed):
            if len(_rendered) >= _RENDERED_MAX:
                _rendered.clear()
            rendered = _rendered[key] = _RenderedOptions(self, renderer, name, listed)
        return rendered


class _RenderedOptions:
    """A long select's options, each rendered unselected, and where each value is."""

    def __init__(self, widget: LongSelect, renderer, name: str, listed: list):
        self.listed = listed
        self.choices = [("" if value is None else value, label) for value, label in listed]
        self.index: dict[str, int] = {}
        self.unselected = []
        for position, (value, label) in enumerate(self.choices):
            if isinstance(label, (list, tuple)):
                raise TypeError("LongSelect does not take grouped choices")
            option = widget.create_option(name, value, label, False, position)
            # As Select's template places each option ({% include %} keeps the template's last line break).
            self.unselected.append(f"\n  {renderer.render(widget.option_template_name, {'widget': option})}\n")
            self.index.setdefault(str(value), position)
        self.unselected_html = mark_safe("".join(self.unselected))


_rendered: dict[tuple, _RenderedOptions] = {}
_RENDERED_MAX = 64


# Widgets whose markup depends only on their attributes, their choices and the value: a field with one of
# these may be kept as rendered, in an unbound or a bound form (field_fragment_key). Radio and checkbox
# lists, multi-widgets and file inputs with a current file are left to render each time.
_KEYABLE_WIDGETS = (forms.widgets.Input, forms.Textarea, forms.Select, forms.CheckboxInput)
_UNKEYABLE_WIDGETS = (forms.MultiWidget, forms.ClearableFileInput)
_UNKEYABLE_WHEN_BOUND = (forms.PasswordInput, forms.FileInput)


def field_fragment_key(field) -> str:
    """What a field's markup depends on, as one string to key its cached fragment on; "" to render it.

    The form and field (names, ids, label, help text, required, disabled), the widget (its type, attributes
    and other settings), its choices, the value (the initial one or, in a bound form, the submitted one as
    the field shows it), the active language and time zone. Choices given by a function count by the
    function's name: like LongSelect's, such a function returns the choices of the active language and
    nothing else. A field with errors, choices read from the database (a ModelChoiceField's queryset) and,
    in a bound form, a password, a file or a field that also renders its initial value give "", so the
    field renders as usual."""
    form, widget, form_field = field.form, field.field.widget, field.field
    if not isinstance(widget, _KEYABLE_WIDGETS) or isinstance(widget, _UNKEYABLE_WIDGETS):
        return ""
    # A submitted password would be in the key; a file input's required attribute and a hidden initial
    # input read the initial value, which the key leaves out.
    if form.is_bound and (isinstance(widget, _UNKEYABLE_WHEN_BOUND) or form_field.show_hidden_initial):
        return ""
    if field.errors:  # a bound form's, or one added to an unbound form
        return ""
    choices = getattr(widget, "choices", None)
    if choices is None:
        choices_key = None
    elif isinstance(choices, CallableChoiceIterator):
        choices_key = f"{choices.func.__module__}.{choices.func.__qualname__}"
    elif isinstance(choices, (list, tuple)):
        choices_key = [(value, _text(label)) for value, label in choices]
    else:  # a ModelChoiceIterator would query the database to be keyed
        return ""
    settings_key = sorted(
        (name, repr(value)) for name, value in vars(widget).items() if name not in ("attrs", "choices", "_choices")
    )
    key = repr(
        (
            type(form).__module__,
            type(form).__qualname__,
            type(form.renderer).__qualname__,
            form.prefix,
            form.auto_id,
            form.use_required_attribute,
            field.html_name,
            field.auto_id,
            type(form_field).__qualname__,
            field.template_name,
            _text(field.label),
            _text(field.help_text),
            form_field.required,
            form_field.disabled,
            form_field.show_hidden_initial,
            type(widget).__module__,
            type(widget).__qualname__,
            widget.template_name,
            {name: _text(value) for name, value in widget.attrs.items()},
            settings_key,
            choices_key,
            field.value(),
            get_language(),
            get_current_timezone_name(),
        )
    )
    # An object shown by its address differs in every form: keyed on it, the field would never be found again.
    return "" if " object at 0x" in key else key


def _text(value):
    """A label or attribute as it renders: lazy translations translated, True and numbers left as they are."""
    return value if value is None or isinstance(value, (bool, int, float)) else str(value)


def form_fragment_key(form) -> str:
    """An unbound form's fields' keys together (field_fragment_key); "" when any field must render, or on errors."""
    if form.is_bound or form.non_field_errors():
        return ""
    keys = []
    for field in form:
        key = field_fragment_key(field)
        if not key:
            return ""
        keys.append(key)
    return "\n".join(keys)


class AccountDeleteForm(forms.Form):
    """Deleting one's account: the password again (when the account has one) and a plain confirmation."""

    password = forms.CharField(
        label=_("Your password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    confirm = forms.BooleanField(
        label=_("I understand that my account and personal data are erased and this cannot be undone."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if not user.has_usable_password():
            del self.fields["password"]  # signed in by emailed code: allauth's re-authentication asked instead

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("That is not your password."), code="password_incorrect")
        return password
