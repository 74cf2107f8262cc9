"""Views with per-view limits (``@ratelimit``), shared scopes, a login that only counts
failures, a custom 429, an async view and a class-based view."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View

from ratelimiter.integrations.django import ratelimit


@ratelimit("5/minute")
def ping(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"pong": True})


@ratelimit("8/minute", scope="search")
def search(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"results": [request.GET.get("q", "")]})


@ratelimit("8/minute", scope="search")
def suggest(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"suggestions": []})


@ratelimit("3/minute", method=("POST",), deduct_when=lambda response: response.status_code == 401)
def login(request: HttpRequest) -> HttpResponse:
    if request.POST.get("password") == "secret":
        return JsonResponse({"ok": True})
    return JsonResponse({"error": "wrong password"}, status=401)


def _too_fast(request: HttpRequest, result: Any) -> HttpResponse:
    return JsonResponse({"error": "reports are limited",
                         "retry_after": result.headers["Retry-After"]}, status=429)


@ratelimit("2/minute", on_breach=_too_fast)
def report(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"report": "ok"})


@ratelimit("2/minute")
async def async_ping(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"pong": "async"})


@method_decorator(ratelimit("3/minute"), name="dispatch")
class ItemsView(View):  # type: ignore[misc]  # Django has no type hints
    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"items": [1, 2, 3]})


def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})
