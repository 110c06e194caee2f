"""The load benchmark's two anchors (bench/run.py), routed only when BENCH_ANCHORS is on.

`hello` is the stack's ceiling: an anonymous request through every middleware and nothing else.
`me` is the least a signed-in page can cost: the session, the user (with its customer, one query)
and a template that renders the user. Each customer page is reported as a ratio to `hello` in the
same run, and `me` shows how much of that ratio is merely being signed in.
"""

from functools import cache

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template import engines
from django.urls import path


@cache
def _me_template():
    return engines["django"].from_string("<!doctype html><title>Me</title><p>{{ user.email }}</p>\n")


def hello(request):
    return HttpResponse("hello\n", content_type="text/plain")


@login_required
def me(request):
    return HttpResponse(_me_template().render({"user": request.user}, request))


urlpatterns = [path("hello/", hello, name="bench_hello"), path("me/", me, name="bench_me")]
