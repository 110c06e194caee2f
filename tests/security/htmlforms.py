"""The POST forms of a page, read from its HTML the way a browser would submit them.

The input sweeps find their forms here rather than from a list, so a form added to any page is
driven with hostile input and extra fields the day it appears."""

from dataclasses import dataclass, field
from html.parser import HTMLParser

TEXT_TYPES = {"text", "email", "url", "password", "search", "tel", "number", "date", "hidden", ""}


@dataclass
class Field:
    name: str
    kind: str  # an <input> type, "select" or "textarea"
    value: str = ""
    checked: bool = False
    options: list[str] = field(default_factory=list)
    maxlength: int | None = None


@dataclass
class Form:
    page: str
    action: str
    fields: list[Field] = field(default_factory=list)
    enctype: str = ""
    method: str = "get"

    @property
    def target(self) -> str:
        return self.action or self.page

    @property
    def names(self) -> set[str]:
        return {f.name for f in self.fields}

    def text_fields(self) -> list[Field]:
        """Fields a person types into (hidden ones too: an attacker types those as well), but not the token."""
        return [
            f for f in self.fields if (f.kind in TEXT_TYPES or f.kind == "textarea") and f.name != "csrfmiddlewaretoken"
        ]

    def submission(self) -> dict[str, str]:
        """What the browser sends when the form is submitted unchanged with its first button."""
        data: dict[str, str] = {}
        button_sent = False
        for f in self.fields:
            if f.kind in {"submit", "button"}:
                if not button_sent and f.name:
                    data[f.name] = f.value
                    button_sent = True
            elif f.kind in {"checkbox", "radio"}:
                if f.checked:
                    data[f.name] = f.value or "on"
            elif f.kind == "select":
                data[f.name] = f.value
            elif f.kind == "file":
                continue
            else:
                data.setdefault(f.name, f.value)
        return data


class _Parser(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: Field | None = None
        self._textarea: Field | None = None
        self._by_id: dict[str, Form] = {}
        # Buttons that submit a form to an action of their own (`formaction`), or a form they name (`form`).
        self._buttons: list[tuple[Form | str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(
                self.page, a.get("action", ""), enctype=a.get("enctype", ""), method=a.get("method", "get").lower()
            )
            self.forms.append(self._form)
            if a.get("id"):
                self._by_id[a["id"]] = self._form
            return
        if tag in ("button", "input") and a.get("type", "submit" if tag == "button" else "").lower() == "submit":
            if "form" in a or ("formaction" in a and self._form is not None):
                self._buttons.append((a["form"] if "form" in a else self._form, a))
                return
        if self._form is None or "name" not in a:
            return
        maxlength = int(a["maxlength"]) if a.get("maxlength", "").isdigit() else None
        if tag == "input":
            kind = a.get("type", "text").lower()
            self._form.fields.append(Field(a["name"], kind, a.get("value", ""), "checked" in a, maxlength=maxlength))
        elif tag == "button":
            self._form.fields.append(Field(a["name"], "submit", a.get("value", "")))
        elif tag == "select":
            self._select = Field(a["name"], "select")
            self._form.fields.append(self._select)
        elif tag == "textarea":
            self._textarea = Field(a["name"], "textarea", maxlength=maxlength)
            self._form.fields.append(self._textarea)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data

    def close(self):
        """Each button with a form or an action of its own submits its form's fields there: one form each."""
        super().close()
        for owner, a in self._buttons:
            form = self._by_id.get(owner) if isinstance(owner, str) else owner
            if form is None:
                continue
            fields = list(form.fields)
            if a.get("name"):
                fields.append(Field(a["name"], "submit", a.get("value", "")))
            method = a.get("formmethod", form.method).lower()
            self.forms.append(Form(self.page, a.get("formaction", form.action), fields, form.enctype, method))


class _OptionParser(_Parser):
    def handle_starttag(self, tag, attrs):
        if tag == "option" and self._select is not None:
            a = {k: v or "" for k, v in attrs}
            self._select.options.append(a.get("value", ""))
            if "selected" in a or not self._select.value and len(self._select.options) == 1:
                self._select.value = a.get("value", "")
            return
        super().handle_starttag(tag, attrs)


def post_forms(page: str, html: str) -> list[Form]:
    """The page's forms that POST."""
    parser = _OptionParser(page)
    parser.feed(html)
    parser.close()
    return [form for form in parser.forms if form.method == "post"]
