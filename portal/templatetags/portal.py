from django import template

from accounts import social

register = template.Library()


@register.filter
def social_links(customer):
    """The customer's social profiles as (label, https URL) pairs."""
    return social.social_links(customer)
