"""Small screens, the keyboard and the account menu."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import MOBILE, sign_in_with_form

pytestmark = pytest.mark.e2e

SIGNED_IN_PAGES = [
    "/",
    "/settings/contact/",
    "/settings/profile/",
    "/settings/social/",
    "/settings/password/",
    "/directory/",
]


def open_account_menu(page):
    menu = page.locator("details.menu")
    page.locator("details.menu > summary").click()
    expect(menu).to_have_attribute("open", "")
    return menu


def overflow_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_pages_fit_a_360px_screen_and_the_menu_opens(new_page, e2e_customer):
    page = new_page(viewport=MOBILE)
    sign_in_with_form(page, e2e_customer.user.email)
    for path in SIGNED_IN_PAGES:
        response = page.goto(path)
        assert response.status == 200, path
        assert overflow_width(page) <= MOBILE["width"], f"{path} scrolls sideways at 360px"
        menu = open_account_menu(page)
        expect(menu.get_by_role("link", name="Settings", exact=True)).to_be_visible()
        expect(menu.get_by_role("button", name="Log out")).to_be_visible()
        menu_box = menu.locator(".menu__list").bounding_box()
        assert menu_box["x"] >= 0 and menu_box["x"] + menu_box["width"] <= MOBILE["width"], f"{path}: menu off screen"
        assert overflow_width(page) <= MOBILE["width"], f"{path} scrolls sideways with the menu open"
        page.keyboard.press("Escape")
        expect(menu).not_to_have_attribute("open", "")


def focused(page) -> dict:
    return page.evaluate("""() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        return {tag: el.tagName.toLowerCase(), cls: el.className, label: el.getAttribute("aria-label"),
                text: el.textContent.trim(), outline: style.outlineStyle, outlineWidth: style.outlineWidth};
    }""")


def assert_outlined(state: dict) -> None:
    assert state["outline"] != "none" and state["outlineWidth"] != "0px", f"no visible focus outline: {state}"


def test_keyboard_reaches_skip_link_then_account_menu_with_visible_focus(signed_in_page):
    page = signed_in_page
    page.goto("/settings/contact/")

    page.keyboard.press("Tab")
    state = focused(page)
    assert (state["tag"], state["cls"]) == ("a", "skip-link"), state
    assert_outlined(state)
    skip_box = page.locator(".skip-link").bounding_box()
    assert skip_box["x"] >= 0 and skip_box["y"] >= 0, "the focused skip link is shown on screen"

    for _ in range(5):
        page.keyboard.press("Tab")
        state = focused(page)
        assert_outlined(state)
        if state["tag"] == "summary":
            break
    else:
        raise AssertionError(f"Tab did not reach the account menu; focus is on {state}")
    # Its name starts with what it shows, the customer's name (WCAG 2.5.3, label in name).
    assert state["label"] is None, state
    expect(page.locator("details.menu > summary")).to_have_accessible_name("Ada Lovelace Account menu")

    # Enter opens the menu; its links are next in the tab order; Escape closes it and keeps focus.
    page.keyboard.press("Enter")
    menu = page.locator("details.menu")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    state = focused(page)
    assert (state["tag"], state["text"]) == ("a", "Home"), state
    assert_outlined(state)
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(page.locator("details.menu > summary")).to_be_focused()


def test_skip_link_moves_focus_to_main(signed_in_page):
    page = signed_in_page
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()


def test_log_out_from_the_menu(signed_in_page, live_server):
    page = signed_in_page
    menu = open_account_menu(page)
    logout = menu.get_by_role("button", name="Log out")
    assert logout.evaluate("b => b.form.method") == "post"
    with page.expect_request(lambda r: r.url.endswith("/accounts/logout/") and r.method == "POST"):
        logout.click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.locator("details.menu > summary")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Sign in")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "sessionid"]

    page.goto("/settings/contact/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/settings/contact/$"))
