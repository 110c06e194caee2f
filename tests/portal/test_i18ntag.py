"""portal.i18ntag: {% load i18n %} gives Django's library, with a {% translate %} that must render as Django's."""

import struct

import pytest
from django.template import Context, Engine, engines
from django.utils import translation

from portal.i18ntag import RememberingTranslateNode

SOURCES = [
    '{% translate "Settings" %}',
    "{% trans 'Log out' %}",
    '{% translate "Settings" as label %}[{{ label }}]',
    '{% translate "Receipts & more <b>" %}',  # escaped once, not twice
    '{% translate "100%% sure" %}',
    '{% translate "May" context "month name" %}',
    '{% translate "Settings" noop %}',
    '{% translate "Settings"|upper %}',
    "{% translate label %}",
    '{% autoescape off %}{% translate "Receipts & more <b>" %}{% endautoescape %}',
    '{% blocktranslate with name="Ada" %}Welcome, {{ name }}{% endblocktranslate %}',
    "{% get_current_language as code %}{{ code }}",
]


def _render(source, context):
    return engines["django"].from_string("{% load i18n %}" + source).render(context)


def _django_render(source, context):
    django_i18n = Engine(libraries={"i18n": "django.templatetags.i18n"})  # Django's own library
    return django_i18n.from_string("{% load i18n %}" + source).render(Context(context))


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("language", ["en", "de"])
def test_it_renders_what_djangos_library_renders_in_each_language(source, language):
    context = {"label": "Profile"}
    with translation.override(language):
        expected = _django_render(source, context)
        assert _render(source, context) == expected
        assert _render(source, context) == expected  # again, remembered


def test_one_template_answers_in_the_language_of_each_render():
    template = engines["django"].from_string('{% load i18n %}{% translate "Settings" %}')
    with translation.override("de"):
        assert template.render({}) == "Einstellungen"
    with translation.override("en"):
        assert template.render({}) == "Settings"
    with translation.override("de"):
        assert template.render({}) == "Einstellungen"


def test_only_constant_messages_are_remembered():
    nodes = (
        engines["django"]
        .from_string(
            '{% load i18n %}{% translate "Settings" %}{% translate label %}{% translate "May" context "month" %}'
        )
        .template.nodelist
    )
    remembering = [node for node in nodes if isinstance(node, RememberingTranslateNode)]
    assert [node.constant for node in remembering] == [True, False, False]


def _write_mo(path, messages: dict[str, str]) -> None:
    """A GNU gettext catalog (.mo) of these messages, as msgfmt writes it."""
    keys = sorted(messages)
    ids = b"".join(key.encode() + b"\0" for key in keys)
    strs = b"".join(messages[key].encode() + b"\0" for key in keys)
    header = 7 * 4
    ids_start = header + len(keys) * 16
    strs_start = ids_start + len(ids)
    table, offset = [], 0
    for key in keys:
        table += [len(key.encode()), ids_start + offset]
        offset += len(key.encode()) + 1
    offset = 0
    for key in keys:
        table += [len(messages[key].encode()), strs_start + offset]
        offset += len(messages[key].encode()) + 1
    path.parent.mkdir(parents=True)
    path.write_bytes(
        struct.pack("<7I", 0x950412DE, 0, len(keys), header, header + len(keys) * 8, 0, 0)
        + struct.pack(f"<{len(table)}I", *table)
        + ids
        + strs
    )


def test_a_change_of_translation_settings_forgets_what_was_remembered(settings, tmp_path):
    template = engines["django"].from_string('{% load i18n %}{% translate "Settings" %}')
    with translation.override("de"):
        assert template.render({}) == "Einstellungen"
    _write_mo(tmp_path / "de" / "LC_MESSAGES" / "django.mo", {"": "", "Settings": "Optionen"})

    settings.LOCALE_PATHS = [tmp_path, *settings.LOCALE_PATHS]  # a catalog that comes first

    with translation.override("de"):
        assert template.render({}) == "Optionen"


def test_it_carries_every_tag_and_filter_of_djangos_library():
    from django.templatetags import i18n as django_i18n

    from portal import i18ntag

    assert set(i18ntag.register.tags) == set(django_i18n.register.tags)
    assert i18ntag.register.filters == django_i18n.register.filters
