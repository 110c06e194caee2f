"""Django's {% url %} tag, remembering the addresses it has made.

A builtin of the template engine (portal/settings.py), so every template's {% url %} is this one. Reversing
a name walks the URL resolver's namespaces and patterns each time, 10–25 µs a tag, and the menu, the
settings navigation and the page links make a dozen or more on every page, mostly the same addresses.
An address is remembered per resolver (a new URLconf has a new one), name, arguments, current app, script
prefix and language (the last 1,024 of them); a tag whose arguments are not plain numbers or strings, or
whose name does not resolve, is Django's own, unchanged.
"""

from functools import lru_cache

from django import template
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as django_url
from django.urls import NoReverseMatch, get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.translation import get_language

register = template.Library()


class RememberingURLNode(URLNode):
    def render(self, context):
        view_name = self.view_name.resolve(context)
        args = tuple(arg.resolve(context) for arg in self.args)
        kwargs = tuple((name, value.resolve(context)) for name, value in self.kwargs.items())
        if not isinstance(view_name, str) or not all(
            type(value) in _PLAIN for value in (*args, *(value for _name, value in kwargs))
        ):
            return super().render(context)
        # The current app as URLNode.render finds it.
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        try:
            url = _reverse(
                view_name, args, kwargs, current_app, get_resolver(get_urlconf()), get_script_prefix(), get_language()
            )
        except NoReverseMatch:
            return super().render(context)  # raises, or sets the variable to "" for {% url … as var %}
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


# Values whose address is the same whenever they are equal (a model instance, say, is not: its str() may change).
_PLAIN = frozenset({int, str})


@lru_cache(maxsize=1024)
def _reverse(view_name, args, kwargs, current_app, resolver, prefix, language) -> str:
    return reverse(view_name, args=args, kwargs=dict(kwargs), current_app=current_app)


@register.tag
def url(parser, token):
    node = django_url(parser, token)
    return RememberingURLNode(node.view_name, node.args, node.kwargs, node.asvar)
