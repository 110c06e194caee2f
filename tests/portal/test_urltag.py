"""portal.urltag's {% url %} remembers addresses of views without arguments: it must give what Django's gives."""

import pytest
from django.template import Context, Engine, engines
from django.test import RequestFactory, override_settings
from django.urls import NoReverseMatch, reverse

from portal.urltag import RememberingURLNode


def render(source, context=None, request=None):
    template = engines["django"].from_string(source)
    return template.render(context or {}, request)


def test_the_portals_templates_use_the_remembering_tag():
    template = engines["django"].from_string("{% url 'portal:home' %}")

    assert isinstance(template.template.nodelist[0], RememberingURLNode)


@pytest.mark.parametrize(
    "source",
    [
        "{% url 'portal:home' %}",
        "{% url 'accounts:contact' %}|{% url 'accounts:contact' %}",
        "{% url 'purchases:receipt' 'R-000001' %}",
        "{% url 'purchases:receipt' number='R-000001' %}",
        "{% url 'admin:index' %}",
        "{% url 'account_login' as login %}[{{ login }}]",
        "{% url 'no-such-view' as missing %}[{{ missing }}]",
        "{% with name='accounts:profile' %}{% url name %}{% endwith %}",
        "{% url 'billing:card_default' 3 %}|{% url 'billing:card_default' 4 %}|{% url 'billing:card_default' 3 %}",
        "{% with number='R-000002' %}{% url 'purchases:receipt' number %}{% endwith %}",
        "{% url 'purchases:receipt' 'R-1' as a %}{% url 'purchases:receipt' 'R-2' as b %}{{ a }} {{ b }}",
    ],
)
def test_it_renders_what_djangos_tag_renders(source):
    django_only = Engine(libraries={}, builtins=[]).from_string(source)  # the engine's default builtins only

    assert render(source) == django_only.render(Context({}))
    assert render(source) == render(source)  # again, from memory


def test_an_argument_that_is_not_a_plain_value_goes_through_djangos_tag_each_time():
    class Number:
        def __init__(self, value):
            self.value = value

        def __str__(self):
            return self.value

    number = Number("R-000003")
    first = render("{% url 'purchases:receipt' number %}", {"number": number})
    number.value = "R-000004"

    assert first == reverse("purchases:receipt", args=["R-000003"])
    assert render("{% url 'purchases:receipt' number %}", {"number": number}) == reverse(
        "purchases:receipt", args=["R-000004"]
    )


def test_a_name_that_does_not_resolve_raises_as_with_django():
    with pytest.raises(NoReverseMatch):
        render("{% url 'no-such-view' %}")


def test_the_current_app_of_the_request_is_respected():
    request = RequestFactory().get("/")
    request.current_app = "admin"

    assert render("{% url 'admin:index' %}", request=request) == reverse("admin:index", current_app="admin")


def test_another_urlconf_gets_its_own_addresses():
    before = render("{% url 'bench_hello' as hello %}[{{ hello }}]")

    with override_settings(ROOT_URLCONF="portal.bench_views"):
        inside = render("{% url 'bench_hello' %}")

    assert before == "[]"  # the anchors are not routed unless switched on
    assert inside == "/hello/"
    assert render("{% url 'bench_hello' as hello %}[{{ hello }}]") == "[]"


def test_the_script_prefix_is_part_of_the_address():
    from django.urls import get_script_prefix, set_script_prefix

    previous = get_script_prefix()
    try:
        set_script_prefix("/portal/")
        prefixed = render("{% url 'portal:home' %}")
    finally:
        set_script_prefix(previous)

    assert prefixed == "/portal/"
    assert render("{% url 'portal:home' %}") == "/"
