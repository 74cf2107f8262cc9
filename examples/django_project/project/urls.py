"""URL routes of the example project."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("ping", views.ping),
    path("search", views.search),
    path("suggest", views.suggest),
    path("login", views.login),
    path("report", views.report),
    path("async-ping", views.async_ping),
    path("items", views.ItemsView.as_view()),
    path("health", views.health),
]
