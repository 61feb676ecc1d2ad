"""Swagger UI in a real browser: load /docs, log in with "Try it out", authorize with the access
token it returned, and call GET /auth/me with it. Exits non-zero on any failure; the screenshot
of the final page is written to SCREENSHOT either way.

    swagger_ui.py BASE_URL EMAIL PASSWORD SCREENSHOT

Drives Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) through Playwright, headless.
"""

import json
import os
import sys

from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 20_000


def operation(page, method, path):
    """The operation block of METHOD PATH, expanded."""
    block = page.locator(f".opblock-{method}").filter(
        has=page.locator(".opblock-summary-path", has_text=path)
    ).filter(has_not=page.locator(".opblock-summary-path", has_text=path + "/")).first
    if not block.locator(".opblock-body").count():
        block.locator(".opblock-summary").first.click()
    return block


def execute(block):
    """Runs the operation and returns (status, body text) of its live response."""
    block.locator(".execute").click()
    response = block.locator(".live-responses-table .response").first
    expect(response).to_be_visible(timeout=TIMEOUT_MS)
    status = response.locator(".response-col_status").inner_text().strip()
    body = response.locator(".response-col_description pre").first.inner_text()
    return status, body


def main():
    base, email, password, screenshot = sys.argv[1:5]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            args=["--no-sandbox"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(f"{base}/docs/")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("KickSync")

            login = operation(page, "post", "/auth/login")
            login.locator(".try-out__btn").click()
            login.locator("textarea.body-param__text").fill(
                json.dumps({"email": email, "password": password})
            )
            status, body = execute(login)
            if status != "200":
                raise SystemExit(f"login through Swagger UI answered {status}: {body}")
            token = json.loads(body)["access_token"]

            page.locator(".auth-wrapper .authorize").first.click()
            page.locator(".auth-container input").first.fill(token)
            page.locator(".auth-btn-wrapper .modal-btn.authorize").first.click()
            page.locator(".auth-btn-wrapper .btn-done").first.click()

            me = operation(page, "get", "/auth/me")
            me.locator(".try-out__btn").click()
            status, body = execute(me)
            if status != "200" or json.loads(body).get("email") != email:
                raise SystemExit(f"GET /auth/me through Swagger UI answered {status}: {body}")
            me.scroll_into_view_if_needed()
            print(f"Swagger UI: logged in as {email}, authorized, GET /auth/me answered 200")
        finally:
            page.screenshot(path=screenshot, full_page=False)
            print(f"screenshot: {screenshot}")
            browser.close()


if __name__ == "__main__":
    main()
