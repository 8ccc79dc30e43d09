"""Permission matrix: EVERY registered route × every role → the expected status, on a seeded installation.

The table below is the policy as users meet it (webapp/core/permissions.py enforces it on the server; hidden
buttons are only a convenience). Each row names an endpoint, a URL with real ids of the seeded installation, the
POST data, who may (the others get 403, anonymous users the login page) and the status they get. POSTs carry a
valid CSRF token for every role, anonymous included, so a refusal proves the policy, not CSRF.

A new route fails `test_every_registered_route_is_in_the_permission_table` until it has a row here: add a
`Case(...)` to ROUTES (ids: see seeded_installation.seed_installation; add one there if the route needs it).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from helpers import LoggedInClient, csrf_token_from
from seeded_installation import SeededTemplate, seed_installation

# anonymous, 管理者, DB設定 only, システム連携 only, DB設定 + システム連携, no permission
ANONYMOUS, ADMIN_ROLE, DB_ONLY, SYS_ONLY, BOTH, NONE = "anonymous", "admin", "db_only", "sys_only", "both", "none"
ROLES = (ANONYMOUS, ADMIN_ROLE, DB_ONLY, SYS_ONLY, BOTH, NONE)
# The seeded user of each role (the demo's admin, keiri and user, plus two of the seed's own).
ROLE_USERS = {ADMIN_ROLE: "admin", DB_ONLY: "only_db", SYS_ONLY: "only_sys", BOTH: "keiri", NONE: "user"}

# Who may (the policy's rules); everyone else gets 403, anonymous users the login page.
EVERYONE = frozenset(ROLES)
LOGGED_IN = EVERYONE - {ANONYMOUS}
DB_SETTINGS = frozenset({ADMIN_ROLE, DB_ONLY, BOTH})
INTEGRATION = frozenset({ADMIN_ROLE, BOTH})  # DB設定 and システム連携
ADMINS = frozenset({ADMIN_ROLE})
LOGIN_PAGE = "login"  # the expected answer of a refused anonymous request: 302 to /login


@dataclass(frozen=True)
class Case:
    method: str
    endpoint: str
    url: str  # formatted with the seeded ids, e.g. "/dbs/{invoices}/settings"
    who: frozenset
    status: int | tuple[int, ...]  # for those who may
    data: dict | None = None
    note: str = ""
    refused: dict | None = None  # {role: status} where a refusal is not the usual 403 / login page

    def expected(self, role: str):
        if role in self.who:
            return self.status
        if self.refused and role in self.refused:
            return self.refused[role]
        return LOGIN_PAGE if role == ANONYMOUS else 403

    @property
    def may_change_data(self) -> bool:
        """A POST that succeeds with a redirect saves or deletes something: it gets its own copy of the
        installation. GETs and POSTs that only re-render a form share one (they change nothing)."""
        return self.method == "POST" and self.status != 200

    @property
    def id(self) -> str:
        return f"{self.method} {self.endpoint}" + (f" ({self.note})" if self.note else "")


INV, SETTING = "/dbs/{invoices}", "/dbs/{invoices}/integrations/{invoice_setting}"
ROUTES = [
    # ---- login, home, static, health
    Case("GET", "auth.login", "/login", {ANONYMOUS}, 200,
         refused={r: 302 for r in LOGGED_IN}, note="a logged-in user is sent home"),
    Case("POST", "auth.login", "/login", {ANONYMOUS}, 200, {"username": "nobody", "password": "wrong-password"},
         refused={r: 302 for r in LOGGED_IN}, note="wrong password"),
    Case("POST", "auth.logout", "/logout", LOGGED_IN, 302),
    Case("GET", "databases.home", "/", LOGGED_IN, 200),
    Case("GET", "static", "/static/app.css", EVERYONE, 200),
    # 503 while no worker runs here (200 with one): the same answer for every role, no login needed.
    Case("GET", "health.healthz", "/healthz", EVERYONE, (200, 503)),
    # ---- 管理者設定
    Case("GET", "auth.permission_list", "/admin/permissions", ADMINS, 200),
    Case("GET", "auth.permission_edit", "/admin/permissions/{user}", ADMINS, 200),
    Case("POST", "auth.permission_edit", "/admin/permissions/{user}", ADMINS, 302, {"can_db_settings": "y"}),
    Case("POST", "auth.end_sessions", "/admin/permissions/{user}/end-sessions", ADMINS, 302, note="全セッションを終了"),
    Case("GET", "auth.user_new", "/admin/users/new", ADMINS, 200),
    Case("POST", "auth.user_new", "/admin/users/new", ADMINS, 200, {"username": "x"}, note="invalid form"),
    Case("GET", "integrations.audit_log", "/admin/audit", ADMINS, 200),
    Case("GET", "runs.mail_outbox", "/admin/mails", ADMINS, 200),
    Case("GET", "health.status", "/admin/status", ADMINS, 200),
    Case("GET", "runs.all_runs", "/runs", ADMINS, 200),
    # ---- DB設定: DBs, fields, menus
    Case("GET", "databases.database_new", "/dbs/new", DB_SETTINGS, 200),
    Case("POST", "databases.database_new", "/dbs/new", DB_SETTINGS, 200, {"name": ""}, note="invalid form"),
    Case("GET", "databases.settings", INV + "/settings", DB_SETTINGS, 200),
    Case("GET", "databases.settings", INV + "/settings?tab=integration", DB_SETTINGS, 200, note="システム連携 tab"),
    Case("POST", "databases.settings_save", INV + "/settings", DB_SETTINGS, 200, {"name": ""}, note="invalid form"),
    Case("POST", "databases.database_delete", "/dbs/{spare}/delete", DB_SETTINGS, 302, note="DB without integrations"),
    Case("POST", "databases.database_delete", INV + "/delete", INTEGRATION, 302, note="DB with integrations"),
    Case("GET", "databases.field_new", INV + "/fields/new", DB_SETTINGS, 200),
    Case("POST", "databases.field_new", INV + "/fields/new", DB_SETTINGS, 200, {"name": ""}, note="invalid form"),
    Case("GET", "databases.field_edit", INV + "/fields/{status_field}/edit", DB_SETTINGS, 200),
    Case("POST", "databases.field_edit", INV + "/fields/{status_field}/edit", DB_SETTINGS, 200, {"name": ""},
         note="invalid form"),
    Case("POST", "databases.field_move", INV + "/fields/{memo_field}/move", DB_SETTINGS, 302, {"direction": "up"}),
    Case("POST", "databases.field_delete", INV + "/fields/{memo_field}/delete", DB_SETTINGS, 302,
         note="a field no integration depends on"),
    Case("POST", "databases.field_delete", INV + "/fields/{status_field}/delete", INTEGRATION, 302,
         note="filter of a menu an integration sends"),
    Case("POST", "documents.documents_generate", INV + "/fields/{pdf}/documents/generate", DB_SETTINGS, 302),
    Case("GET", "databases.menu_new", INV + "/menus/new", DB_SETTINGS, 200),
    Case("POST", "databases.menu_new", INV + "/menus/new", DB_SETTINGS, 200, {"name": ""}, note="invalid form"),
    Case("GET", "databases.menu_edit", INV + "/menus/{invoice_list}/edit", DB_SETTINGS, 200, note="unused menu"),
    Case("POST", "databases.menu_edit", INV + "/menus/{invoice_list}/edit", DB_SETTINGS, 200, {"action": "add_column"},
         note="unused menu, row edit"),
    Case("GET", "databases.menu_edit", INV + "/menus/{invoice_menu}/edit", DB_SETTINGS, 200,
         note="menu an integration and a timer use: read-only without システム連携"),
    Case("POST", "databases.menu_edit", INV + "/menus/{invoice_menu}/edit", INTEGRATION, 200, {"action": "add_column"},
         note="menu an integration and a timer use, row edit"),
    Case("POST", "databases.menu_delete", INV + "/menus/{invoice_list}/delete", DB_SETTINGS, 302, note="unused menu"),
    Case("POST", "databases.menu_delete", INV + "/menus/{invoice_menu}/delete", INTEGRATION, 302,
         note="menu an integration and a timer use"),
    # ---- 楽楽明細連携設定, タイマー設定, a menu's システム連携設定: DB設定 and システム連携
    Case("GET", "integrations.setting_list", INV + "/integrations", INTEGRATION, 200),
    Case("GET", "integrations.setting_new", INV + "/integrations/new", INTEGRATION, 200),
    Case("POST", "integrations.setting_new", INV + "/integrations/new", INTEGRATION, 200, {"name": ""},
         note="invalid form"),
    Case("GET", "integrations.setting_edit", SETTING + "/edit", INTEGRATION, 200),
    Case("POST", "integrations.setting_edit", SETTING + "/edit", INTEGRATION, 200, {"name": ""}, note="invalid form"),
    Case("POST", "integrations.setting_delete", SETTING + "/delete", INTEGRATION, 302),
    Case("POST", "integrations.setting_connection_test", INV + "/integrations/connection-test", INTEGRATION, 200,
         {"url": "http://127.0.0.1:9/x/", "token": "typed-token-0123"}, note="nothing listens there"),
    Case("GET", "timers.timer_settings", SETTING + "/timer", INTEGRATION, 200),
    Case("POST", "timers.timer_settings", SETTING + "/timer", INTEGRATION, 200, {"action": "refresh"},
         note="form refresh"),
    Case("POST", "timers.timer_run_now", SETTING + "/timer/run-now", INTEGRATION, 302, note="今すぐ実行"),
    Case("GET", "integrations.menu_integration_settings", INV + "/menus/{invoice_menu}/integrations", INTEGRATION, 200),
    Case("POST", "integrations.menu_integration_settings", INV + "/menus/{invoice_menu}/integrations", INTEGRATION,
         200, {"action": "add_setting"}),
    # ---- records and record lists: a login
    Case("GET", "databases.record_list", "/menus/{invoice_menu}", LOGGED_IN, 200),
    Case("GET", "databases.record_new", INV + "/records/new", LOGGED_IN, 200),
    Case("POST", "databases.record_new", INV + "/records/new", LOGGED_IN, 200, {"action": "add_row"},
         note="add a 明細 row"),
    Case("GET", "databases.record_view", "/records/{invoice}", LOGGED_IN, 200),
    Case("GET", "databases.record_edit", "/records/{invoice}/edit", LOGGED_IN, 200),
    Case("POST", "databases.record_edit", "/records/{invoice}/edit", LOGGED_IN, 200, {"action": "add_row"},
         note="add a 明細 row"),
    Case("POST", "databases.record_delete", "/records/{invoice}/delete", LOGGED_IN, 302),
    Case("GET", "databases.record_file", "/records/{invoice}/files/{attachment}", LOGGED_IN, 200),
    Case("GET", "documents.document_file", "/records/{invoice}/documents/{pdf}", LOGGED_IN, 200),
    Case("POST", "documents.document_regenerate", "/records/{invoice}/documents/{pdf}/regenerate",
         LOGGED_IN, 302),
    # ---- running an integration and its history: a login
    Case("GET", "runs.run_dialog", "/menus/{invoice_menu}/integrations/{invoice_setting}/dialog", LOGGED_IN, 200),
    Case("POST", "runs.run_preview", "/menus/{invoice_menu}/integrations/{invoice_setting}/preview", LOGGED_IN, 200),
    Case("POST", "runs.run_start", "/menus/{invoice_menu}/integrations/{invoice_setting}/run", LOGGED_IN, 302),
    Case("GET", "runs.menu_runs", "/menus/{customer_menu}/runs", LOGGED_IN, 200),
    Case("GET", "runs.run_detail", "/runs/{run}", LOGGED_IN, 200),
    Case("GET", "runs.run_progress", "/runs/{run}/progress", LOGGED_IN, 200),
    Case("GET", "runs.call_file", "/runs/{run}/calls/{call}/files/0", LOGGED_IN, 200),
    Case("POST", "runs.run_rerun", "/runs/{run}/rerun", LOGGED_IN, 302, note="a completed run: nothing to resend"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The seeded installation, built once for this module (with a real emulator for its run)."""
    from meisai_testlib import ACCOUNT, TOKEN, start_emulator

    from meisai_emulator.tenants import create_tenant

    root = tmp_path_factory.mktemp("permissions")
    emulator_app, root_url, stop = start_emulator(root / "emulator", import_delay=0)
    create_tenant(emulator_app.extensions["meisai_emulator"].store, ACCOUNT, TOKEN)
    seeded = SeededTemplate(root / "template")
    try:
        seeded.build(lambda app: seed_installation(app, f"{root_url}{ACCOUNT}/", TOKEN))
    finally:
        stop()
    yield seeded
    seeded.close()


@pytest.fixture(scope="module")
def shared_installation(template, tmp_path_factory):
    """One copy of the seeded installation for the rows that change nothing (see Case.may_change_data)."""
    app = _fresh(template, tmp_path_factory.mktemp("shared"))
    yield app
    template.drop_clone(app)


@pytest.fixture
def installation(request, template, tmp_path):
    """The installation a matrix row runs on: its own fresh copy when the row may change data."""
    case = request.node.callspec.params.get("case") if hasattr(request.node, "callspec") else None
    if case is not None and not case.may_change_data:
        yield request.getfixturevalue("shared_installation")
        return
    app = _fresh(template, tmp_path / "clone")
    yield app
    template.drop_clone(app)


def _fresh(template, path):
    from webapp.extensions import limiter

    app = template.clone(path)
    with app.app_context():
        limiter.reset()  # the matrix's wrong-password login must not lock anyone out
    return app


class AnonymousClient:
    """No login, but a session with a valid CSRF token (from the login page), like a browser that has one."""

    def __init__(self, client):
        self.client = client
        self.csrf = csrf_token_from(client.get("/login").get_data(as_text=True))

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url, data=None, **kwargs):
        return self.client.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)


def client_for(app, role: str):
    if role == ANONYMOUS:
        return AnonymousClient(app.test_client())
    return LoggedInClient(app.test_client(), ROLE_USERS[role])


def test_every_registered_route_is_in_the_permission_table(app):
    """Fails when a route (rule × method) has no row in ROUTES, or a row names an endpoint that is gone."""
    registered = {(rule.endpoint, method): rule.rule for rule in app.url_map.iter_rules()
                  for method in rule.methods - {"HEAD", "OPTIONS"}}
    covered = {(case.endpoint, case.method) for case in ROUTES}
    missing = sorted(set(registered) - covered, key=lambda key: registered[key])
    assert not missing, "routes missing from the permission table (add a Case to ROUTES in tests/test_permissions.py):\n" + \
        "\n".join(f"  {method} {registered[(endpoint, method)]}  (endpoint {endpoint})" for endpoint, method in missing)
    stale = sorted(covered - set(registered))
    assert not stale, f"permission table rows for routes that no longer exist: {stale}"


def test_the_permission_table_covers_every_role(app):
    for case in ROUTES:
        assert case.who <= EVERYONE and ({case.status} if isinstance(case.status, int) else set(case.status)), case.id
    assert len({(case.method, case.url) for case in ROUTES}) == len(ROUTES), "a row is listed twice"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", ROUTES, ids=lambda case: case.id)
def test_permission_matrix(installation, template, case, role):
    url = case.url.format(**template.ids)
    # The row reaches the route it names (not a 404 of a mistyped URL that would pass for a refusal).
    endpoint, _ = installation.url_map.bind("localhost").match(urlsplit(url).path, method=case.method)
    assert endpoint == case.endpoint, f"{case.id}: {url} is {endpoint}"

    user = client_for(installation, role)
    response = user.get(url) if case.method == "GET" else user.post(url, data=case.data)
    expected = case.expected(role)
    body = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
    where = f"{role}: {case.method} {url} ({case.endpoint})"
    if expected == LOGIN_PAGE:
        assert response.status_code == 302 and urlsplit(response.location).path == "/login", \
            f"{where}: expected the login page, got {response.status_code} {response.location}"
        return
    allowed = (expected,) if isinstance(expected, int) else expected
    assert response.status_code in allowed, f"{where}: expected {expected}, got {response.status_code}"
    assert "Traceback" not in body
    if response.status_code == 403:
        assert "権限がありません" in body and "権限が必要です" in body, where
    if case.method == "POST" and response.status_code == 400:
        pytest.fail(f"{where}: 400 (a CSRF refusal?) — the matrix must reach the policy")


def test_a_refused_post_changes_nothing(installation, template):
    """DB設定 alone deleting a menu an integration sends: 403, and the menu with its filter is still there."""
    from webapp.databases.models import Menu
    from webapp.extensions import db

    ids = template.ids
    response = client_for(installation, DB_ONLY).post(f"/dbs/{ids['invoices']}/menus/{ids['invoice_menu']}/delete")
    assert response.status_code == 403
    with installation.app_context():
        menu = db.session.get(Menu, ids["invoice_menu"])
        assert [(f.field.name, f.value) for f in menu.filters] == [("連携ステータス", "未連携")]


ADMIN, EDITOR, PLAIN = "admin", "editor", "plain"


@pytest.mark.parametrize("method,url", [("GET", "/admin/permissions"), ("GET", "/dbs/1/settings"), ("GET", "/menus/1"),
                                        ("POST", "/dbs/new"), ("POST", "/records/1/delete")])
def test_anonymous_users_are_sent_to_login(client, sample, method, url):
    response = client.get(url) if method == "GET" else client.post(url)
    # A POST without a session has no valid CSRF token either: refused before anything happens.
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert "/login" in response.location


def test_forbidden_page_names_the_missing_permission(login, sample):
    body = login(PLAIN).get(f"/dbs/{sample['database']}/settings").get_data(as_text=True)
    assert "「DB設定」権限が必要です" in body


def test_granting_db_settings_opens_db_settings_for_that_user(app, login, sample, users):
    plain = login(PLAIN)
    assert plain.get(f"/dbs/{sample['database']}/settings").status_code == 403
    admin = login(ADMIN)
    response = admin.post(f"/admin/permissions/{users['plain']}", data={"can_db_settings": "y"})
    assert response.status_code == 302
    assert plain.get(f"/dbs/{sample['database']}/settings").status_code == 200
    listing = admin.get("/admin/permissions").get_data(as_text=True)
    assert "一般 次郎" in listing


def test_settings_links_are_hidden_from_users_without_db_settings(login, sample):
    body = login(PLAIN).get("/").get_data(as_text=True)
    assert f"/dbs/{sample['database']}/settings" not in body
    body = login(EDITOR).get("/").get_data(as_text=True)
    assert f"/dbs/{sample['database']}/settings" in body


def test_integration_tab_requires_both_permissions_to_offer_settings(app, login, sample, users):
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        user = db.session.get(User, users["plain"])
        user.can_db_settings = True
        db.session.commit()
    body = login(PLAIN).get(f"/dbs/{sample['database']}/settings?tab=integration").get_data(as_text=True)
    assert "「DB設定」と「システム連携」の両方の権限が必要です" in body
    body = login(EDITOR).get(f"/dbs/{sample['database']}/settings?tab=integration").get_data(as_text=True)
    assert "楽楽明細連携設定" in body and "両方の権限が必要です" not in body
