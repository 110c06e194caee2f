"""Django's stock form templates (inputs, selects, textareas, labels, error lists) written out in Python.

Rendering a form field through templates costs 0.3–0.5 ms a field (the field partial, the label, the
widget, the attrs loop twice, the error list: six or seven template renders), and a select costs two
template renders per option. These functions return what those templates return, character for
character, from the same context the widget, bound field or error list builds; PortalFormRenderer
uses them for the stock templates only, so a project override of any of them still applies.
tests/portal/test_form_markup.py renders every form the portal shows both ways and compares them.
"""

from django.utils.formats import localize
from django.utils.functional import Promise
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeData, mark_safe
from django.utils.timezone import template_localtime


def text(value) -> str:
    """What `{{ value }}` prints in an autoescaped template (django.template.base.render_value_in_context)."""
    if type(value) is str:
        return escape(value)
    value = localize(template_localtime(value))
    if not issubclass(type(value), str):
        value = str(value)
    return conditional_escape(value)


def formatted(value) -> str:
    """What `{{ value|stringformat:'s' }}` prints in an autoescaped template."""
    if type(value) is str:
        return escape(value)
    try:
        result = "%s" % (str(value) if isinstance(value, tuple) else value)
    except (ValueError, TypeError):
        result = ""
    if isinstance(value, SafeData):
        result = mark_safe(result)
    return conditional_escape(result)


def attrs(attributes: dict) -> str:
    """django/forms/widgets/attrs.html and django/forms/attrs.html."""
    html = ""
    for name, value in attributes.items():
        if value is False:
            continue
        html += f" {text(name)}" if value is True else f' {text(name)}="{formatted(value)}"'
    return html


def input_tag(context) -> str:
    """django/forms/widgets/input.html, and the widgets that only include it (text, email, checkbox…)."""
    widget = context["widget"]
    html = f'<input type="{text(widget["type"])}" name="{text(widget["name"])}"'
    if widget["value"] != None:  # noqa: E711 - the template's comparison, which a value may define
        html += f' value="{formatted(widget["value"])}"'
    return html + attrs(widget["attrs"]) + ">"


def option_tag(context) -> str:
    """django/forms/widgets/select_option.html."""
    option = context["widget"]
    return f'<option value="{formatted(option["value"])}"{attrs(option["attrs"])}>{text(option["label"])}</option>'


def select_tag(context, render_option) -> str:
    """django/forms/widgets/select.html; `render_option(template_name, context)` renders each option."""
    widget = context["widget"]
    parts = [f'<select name="{text(widget["name"])}"{attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{text(group_name)}">')
        for option in group_choices:
            # {% include %} keeps the option template's closing line break, hence the blank lines.
            parts.append("\n  " + render_option(option["template_name"], {**context, "widget": option}) + "\n")
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def textarea_tag(context) -> str:
    """django/forms/widgets/textarea.html."""
    widget = context["widget"]
    value = widget["value"]
    return (
        f'<textarea name="{text(widget["name"])}"{attrs(widget["attrs"])}>\n{text(value) if value else ""}</textarea>'
    )


def label_tag(context) -> str:
    """django/forms/label.html."""
    if not context["use_tag"]:
        return text(context["label"])
    tag = text(context["tag"])
    return f"<{tag}{attrs(context['attrs'])}>{text(context['label'])}</{tag}>"


def error_list(context) -> str:
    """django/forms/errors/list/default.html (which includes ul.html)."""
    errors = context["errors"]
    if not errors:
        return ""
    field_id = getattr(errors, "field_id", None)
    html = f'<ul class="{text(context["error_class"])}"'
    if field_id:
        html += f' id="{text(field_id)}_error"'
    return html + ">" + "".join(f"<li>{text(error)}</li>" for error in errors) + "</ul>"


# --- The project's form partials (templates/partials/), for the renderer's form and field templates ---


def field_group(context) -> str:
    """templates/partials/form_field.html: label, widget, help text and errors of one field."""
    field = context["field"]
    errors = field.errors
    invalid = " field--invalid" if errors else ""
    # A lazy label or help text is translated once here, not again at every use.
    help_text = str(field.help_text) if isinstance(field.help_text, Promise) else field.help_text
    label = text(field.label_tag(contents=str(field.label) if isinstance(field.label, Promise) else None))
    help_html = f'<p class="field__help" id="{text(field.auto_id)}_helptext">{text(help_text)}</p>' if help_text else ""
    if field.widget_type == "checkbox":
        return (
            f'<div class="field field--check{invalid}">\n    {text(field)}\n    {label}\n'
            f"    {help_html}\n    {text(errors)}\n  </div>"
        )
    return (
        f'<div class="field{invalid}">\n    {label}\n    {text(field)}\n    {help_html}\n    {text(errors)}\n  </div>'
    )


def form_fields(context) -> str:
    """templates/partials/form.html: the form's own errors, each visible field's group, the hidden fields."""
    errors = context["errors"]
    head = f'<div class="form-errors" role="alert">{text(errors)}</div>' if errors else ""
    body = "".join(text(field.as_field_group()) for field, _errors in context["fields"])
    hidden = "".join(text(field) for field in context["hidden_fields"])
    return f"{head}\n{body}\n{hidden}\n"
