"""Every page and htmx fragment of the app, as an administrator gets them from a seeded installation.

WTForms renders `hx_post=` as `hx_post`, which htmx ignores: the control then silently does nothing (a
レコード更新 項目 whose value control never appeared). This walk GETs every route of app.url_map with real ids,
then does what htmx would do on each page — every hx-get with its HX-Target, every re-render POST with each
value of the control, each row action and a refused 確定 — a few steps deep, and fails on any attribute
starting with `hx_` and on any 5xx.
"""

from __future__ import annotations

from collections import deque
from urllib.parse import urlencode

import pytest
from htmx_walk import Step, bad_attributes, parse, steps_of, swapped
from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    INVOICE_MENU,
    INVOICE_SETTING,
    execute,
    latest_run,
    menu_named,
    run_url,
    setting_named,
)
from sqlalchemy import select

from webapp.auth.models import User
from webapp.databases.models import Database, Record
from webapp.extensions import db
from webapp.integrations.operations import settings_of
from webapp.runs.models import RunCall

# Steps followed from each page (breadth first); enough to reach a row added, then its 項目 chosen.
STEPS_PER_PAGE = 120
DEPTH = 3
# GET routes that may answer no 2xx in the seeded installation, and why.
NO_PAGE_EXPECTED = {
    "databases.record_file": "the demo has no uploaded ファイル values",
    "auth.login": "an administrator who is logged in is sent on",
    "health.healthz": "no worker or scheduler runs in this test (503, by design)",
}


@pytest.fixture
def installation(app, demo, login):
    """The demo, with a finished run (run detail, its files) and a timer that uses a menu."""
    from datetime import time

    from webapp.core.clock import utcnow
    from webapp.timers.operations import TimerValues, save_timer
    from webapp.timers.schedule import Kind

    user = login("user")
    response = user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    with app.app_context():
        assert execute(latest_run().id).status == "completed"
        save_timer(setting_named(INVOICE_SETTING), TimerValues(
            enabled=True, priority=3, kind=Kind.DAILY, at=time(9, 30), menu_id=menu_named(INVOICE_MENU).id), utcnow())
    return login("admin")


def id_scopes(app) -> list[dict[str, int]]:
    """Sets of route arguments that belong together (a DB with one of its fields, menus, settings, records …)."""
    scopes: list[dict[str, int]] = []
    with app.app_context():
        for database in db.session.execute(select(Database)).scalars():
            records = db.session.execute(
                select(Record.id).where(Record.database_id == database.id).order_by(Record.id).limit(2)).scalars().all()
            settings = settings_of(database)
            scopes.append({"database_id": database.id})
            for record_id in records:
                scopes.append({"database_id": database.id, "record_id": record_id})
            for f in database.fields:
                scopes.append({"database_id": database.id, "field_id": f.id, "record_id": records[0]})
            for s in settings:
                scopes.append({"database_id": database.id, "setting_id": s.id})
            for menu in database.menus:
                scopes.append({"database_id": database.id, "menu_id": menu.id})
                for s in settings:
                    scopes.append({"database_id": database.id, "menu_id": menu.id, "setting_id": s.id})
        for user_id in db.session.execute(select(User.id)).scalars():
            scopes.append({"user_id": user_id})
        for call in db.session.execute(select(RunCall)).scalars():
            scopes += [{"run_id": call.run_id, "index": call.index, "number": n} for n in range(len(call.files))]
    return scopes


def page_urls(app) -> list[tuple[str, str]]:
    """(endpoint, url) of every GET route, once for each set of real ids it takes."""
    scopes = id_scopes(app)
    urls = []
    missing = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static" or "GET" not in rule.methods:
                continue
            needed = set(rule.arguments)
            combos = {tuple(sorted((k, scope[k]) for k in needed)) for scope in scopes if needed <= scope.keys()}
            if not combos:
                missing.append(rule.rule)
            for combo in sorted(combos):
                urls.append((rule.endpoint, url_for(rule.endpoint, **dict(combo))))
    assert not missing, f"no ids for these routes: add them to id_scopes(): {missing}"
    return urls


def test_no_page_or_fragment_carries_an_hx_underscore_attribute(app, installation):
    admin = installation
    problems: list[str] = []
    answered: dict[str, bool] = {}
    requests = 0
    for endpoint, url in page_urls(app):
        response = admin.get(url)
        requests += 1
        if endpoint != "health.healthz":  # 503 there means "no worker or scheduler": none runs in this test
            assert response.status_code < 500, f"GET {url}: {response.status_code}"
        answered[endpoint] = answered.get(endpoint, False) or response.status_code < 300
        if response.mimetype != "text/html":
            continue
        text = response.get_data(as_text=True)
        problems += [f"GET {url}: {bad}" for bad in bad_attributes(text)]
        requests += follow_htmx(admin, url, parse(text), problems)
    silent = sorted(e for e, ok in answered.items() if not ok and e not in NO_PAGE_EXPECTED)
    assert not silent, f"routes that answered no page in the walk (give them real ids): {silent}"
    assert not problems, "attributes htmx ignores (pass real names: **{'hx-post': …}):\n" + "\n".join(problems)
    assert requests > 500  # the walk really went through the pages and their fragments


def follow_htmx(admin, page_url: str, page, problems: list[str]) -> int:
    """Send what htmx would from this page, breadth first; returns the number of requests."""
    queue = deque((step, state, 1) for step, state in steps_of(page, page_url))
    seen: set[tuple] = set()
    sent = 0
    while queue and sent < STEPS_PER_PAGE:
        step, state, depth = queue.popleft()
        if step.key() in seen:
            continue
        seen.add(step.key())
        response = send(admin, step)
        sent += 1
        where = f"{step.method} {step.url} [{step.label}] (from {page_url})"
        assert response.status_code < 500, f"{where}: {response.status_code}"
        if response.mimetype != "text/html" or response.status_code != 200:
            continue
        text = response.get_data(as_text=True)
        problems += [f"{where}: {bad}" for bad in bad_attributes(text)]
        new_state = swapped(state, step, text)
        if new_state is not None and depth < DEPTH:
            queue.extend((s, st, depth + 1) for s, st in steps_of(new_state, page_url))
    return sent


def send(admin, step: Step):
    if step.method == "GET":
        url = step.url + (("&" if "?" in step.url else "?") + urlencode(step.data) if step.data else "")
        return admin.get(url, headers=step.headers())
    data: dict[str, list[str]] = {}
    for key, value in step.data:
        data.setdefault(key, []).append(value)
    return admin.post(step.url, data=data, headers=step.headers())
