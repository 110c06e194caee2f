"""Django's i18n template library, its {% translate %} remembering what a constant message renders to.

Registered as the engine's `i18n` library (portal/settings.py), so `{% load i18n %}` loads this: every tag
and filter of Django's library, with `translate` (and its old name `trans`) replaced. A page has 20–50
`{% translate "…" %}` tags, each looking the message up in the active catalog and escaping it again on
every render (5 µs a tag). A tag whose message is a string literal, with no filters, no `noop` and no
`context`, remembers its output per language and autoescaping; the memory is dropped when a setting
that changes translations does. Every other tag is Django's own, unchanged.
"""

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.base import Variable
from django.templatetags import i18n as django_i18n
from django.utils.translation import get_language

register = template.Library()
register.tags.update(django_i18n.register.tags)
register.filters.update(django_i18n.register.filters)

_TRANSLATION_SETTINGS = frozenset({"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS"})
_generation = 0  # bumped when translations may have changed: every remembered output is stale


@receiver(setting_changed, dispatch_uid="portal_i18ntag_forget")
def _forget_translations(sender, setting, **kwargs):
    global _generation
    if setting in _TRANSLATION_SETTINGS:
        _generation += 1


class RememberingTranslateNode(django_i18n.TranslateNode):
    def __init__(self, filter_expression, noop, asvar=None, message_context=None):
        super().__init__(filter_expression, noop, asvar, message_context)
        var = self.filter_expression.var
        self.constant = (
            not noop
            and message_context is None
            and not self.filter_expression.filters
            and isinstance(var, Variable)
            and var.literal is not None
        )
        self.rendered: dict[tuple, str] = {}
        self.generation = _generation

    def render(self, context):
        if not self.constant:
            return super().render(context)
        if self.generation != _generation:
            self.rendered, self.generation = {}, _generation
        key = (get_language(), context.autoescape)
        value = self.rendered.get(key)
        if value is None:
            value = super().render(context)
            if self.asvar:
                value = context[self.asvar]
            self.rendered[key] = value
        if self.asvar:
            context[self.asvar] = value
            return ""
        return value


def _remembering(tag):
    def compile_tag(parser, token):
        node = tag(parser, token)
        return RememberingTranslateNode(node.filter_expression, node.noop, node.asvar, node.message_context)

    return compile_tag


register.tag("translate", _remembering(django_i18n.do_translate))
register.tag("trans", _remembering(django_i18n.do_translate))
