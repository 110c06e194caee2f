from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def secret_key_from_environment(app_configs, **kwargs):
    """The key must come from DJANGO_SECRET_KEY: a throwaway one logs everyone out on restart."""
    if settings.SECRET_KEY_FROM_ENVIRONMENT:
        return []
    return [
        Error(
            "DJANGO_SECRET_KEY is not set.",
            hint="Set it to a long random value, the same on every node.",
            id="portal.E001",
        )
    ]


@register(Tags.templates)
def page_templates_load(app_configs, **kwargs):
    """Pages cannot render without the portal's templates (a wheel built without its package data)."""
    from .health import templates_unloadable

    return [
        Error(
            f"The page template {name!r} cannot be loaded.",
            hint="Install the portal with its templates (portal/templates is package data of the wheel).",
            id="portal.E002",
        )
        for name in templates_unloadable()
    ]


@register(Tags.staticfiles)
def portal_static_files_found(app_configs, **kwargs):
    """collectstatic must find the portal's own CSS and JavaScript, or pages are served unstyled."""
    from .health import static_files_missing

    return [
        Error(
            f"The static file {path!r} is not found.",
            hint="Install the portal with its static files (portal/static is package data of the wheel).",
            id="portal.E003",
        )
        for path in static_files_missing()
    ]
