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
