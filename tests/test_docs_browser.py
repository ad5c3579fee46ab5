"""/docs in a real browser: headless Chromium, driven by Selenium through Debian's chromedriver.

The page is opened as a user would, the POST /api/scores form is filled in and executed, and
what the page shows (status, headers, body) must be the answer the server really sent: a
201 whose body is the stored row, and an access-log line for that request. A second test
uploads a file from the form's file input and sees the stored file shown back from the
GET /media/{name} form. The first takes a screenshot into the test's temp directory
(docs/img/docs.png in the README is one such screenshot).

With CI=true a missing Chromium or chromedriver fails the tests; elsewhere they are skipped.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from support import running_server, wait_for

TOKEN = "docs-admin"
CLIENT_ID = 4242


def binary(name: str, debian_path: str) -> str:
    path = shutil.which(name) or (debian_path if os.path.exists(debian_path) else None)
    if path is None:
        message = (f"{name} is not installed (Debian packages chromium and chromium-driver; "
                   "tests/run.sh installs them)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("docs-browser"), ["scores", "uploads"],
                        admin_token=TOKEN, workers=2) as s:
        yield s


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    options = webdriver.ChromeOptions()
    options.binary_location = binary("chromium", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--no-proxy-server", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-extensions",
                 "--window-size=1280,1000", "--hide-scrollbars",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=binary("chromedriver",
                                                             "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def open_operation(browser, server, operation_id: str):
    """Load /docs, wait for the spec to render, open one operation; its <details> element."""
    browser.get(server.url("/docs"))
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    details = browser.find_element(By.ID, operation_id)
    details.find_element(By.TAG_NAME, "summary").click()
    WebDriverWait(browser, 10).until(lambda d: details.find_elements(By.CSS_SELECTOR, "fieldset.try"))
    return details


def execute(browser, details):
    """Press Execute and wait for the answer; the answer's element."""
    details.find_element(By.CSS_SELECTOR, "button.execute").click()
    answer = details.find_element(By.CSS_SELECTOR, ".answer")
    WebDriverWait(browser, 20).until(lambda d: answer.get_attribute("data-state") in ("done",
                                                                                         "failed"))
    return answer


def test_post_scores_from_the_page_shows_the_201_the_server_sent(browser, server,
                                                                  tmp_path: Path) -> None:
    details = open_operation(browser, server, "post_api_scores")
    # the form comes filled with the document's example; change the client, keep the rest
    area = details.find_element(By.CSS_SELECTOR, "textarea.body-json")
    body = json.loads(area.get_attribute("value"))
    assert {"phone", "email"} <= set(body)
    body["client_id"] = CLIENT_ID
    area.clear()
    area.send_keys(json.dumps(body, ensure_ascii=False))
    answer = execute(browser, details)
    # the form and the answer, as the README shows them
    browser.execute_script("arguments[0].scrollIntoView()",
                           details.find_element(By.CSS_SELECTOR, "fieldset.try"))
    browser.execute_script("window.scrollBy(0, -70)")  # below the sticky header
    browser.save_screenshot(str(tmp_path / "docs.png"))

    status = answer.find_element(By.CSS_SELECTOR, ".response-status").text
    shown_headers = answer.find_element(By.CSS_SELECTOR, ".response-headers").text
    shown = json.loads(answer.find_element(By.CSS_SELECTOR, ".response-body").text)
    assert answer.get_attribute("data-status") == "201"
    assert status == "201 Created"
    # what the page shows is what the server stored and sends now
    stored = server.get(f"/api/scores/{CLIENT_ID}")
    assert stored.status_code == 200
    assert shown == stored.json()
    assert shown["client_id"] == CLIENT_ID and shown["score"] == 5.0
    assert f"location: http://127.0.0.1:{server.port}/api/scores/{CLIENT_ID}" in shown_headers
    assert "content-type: application/json; charset=utf-8" in shown_headers
    # and the page really made that request (each worker flushes its log once a second)
    wait_for(lambda: re.search(r'"POST /api/scores HTTP/1\.1" 201 ',
                               server.access_log.read_text()), timeout=5)
    assert (tmp_path / "docs.png").stat().st_size > 10_000


def test_upload_a_file_from_the_form_and_fetch_it_back(browser, server, tmp_path: Path) -> None:
    upload = tmp_path / "hello from the browser.txt"
    upload.write_text("written by chromium\n")
    details = open_operation(browser, server, "post_upload")
    details.find_element(By.CSS_SELECTOR, "input[type=file][data-part=file]").send_keys(
        str(upload))
    answer = execute(browser, details)
    assert answer.get_attribute("data-status") == "201", answer.text
    stored = json.loads(answer.find_element(By.CSS_SELECTOR, ".response-body").text)
    name = stored["file"].partition("/media/")[2]
    assert name == "plain/hello_from_the_browser.txt"

    details = open_operation(browser, server, "get_media_name")
    field = details.find_element(By.CSS_SELECTOR, "input[data-param=name]")
    field.clear()
    field.send_keys(name)
    answer = execute(browser, details)
    assert answer.get_attribute("data-status") == "200", answer.text
    assert answer.find_element(By.CSS_SELECTOR, ".response-body").text == "written by chromium"
    assert "x-content-type-options: nosniff" in answer.find_element(
        By.CSS_SELECTOR, ".response-headers").text


def test_admin_routes_send_the_token_from_the_page(browser, server) -> None:
    """An admin route without the token is the 401; with it typed in, the page sends it."""
    # scores and uploads have no admin route: /openapi.json of a server with sales has
    with running_server(server.workdir / "admin", ["sales"], admin_token=TOKEN,
                        workers=1) as sales:
        details = open_operation(browser, sales, "post_clear")
        assert execute(browser, details).get_attribute("data-status") == "401"
        browser.find_element(By.ID, "admin-token").send_keys(TOKEN)
        answer = execute(browser, details)
        assert answer.get_attribute("data-status") == "200"
        assert json.loads(answer.find_element(By.CSS_SELECTOR, ".response-body").text) == {
            "status": "ok"}
