from django.forms.renderers import TemplatesSetting


class PortalFormRenderer(TemplatesSetting):
    """Render every form, ours and allauth's, through the project's field partial."""

    form_template_name = "partials/form.html"
    field_template_name = "partials/form_field.html"
