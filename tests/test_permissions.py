"""Permission matrix: every guarded URL × {admin, user with DB設定+システム連携, user without} → status.

The server enforces it; hiding buttons is only a convenience.
"""

import pytest

ADMIN, EDITOR, PLAIN = "admin", "editor", "plain"


def guarded_urls(s):
    db_id, menu, record = s["database"], s["menu"], s["record"]
    field = s["fields"]["請求番号"]
    pdf = s["fields"]["添付"]
    return [
        # (method, url, data, {role: expected status})
        ("GET", "/", None, {ADMIN: 200, EDITOR: 200, PLAIN: 200}),
        ("GET", "/admin/permissions", None, {ADMIN: 200, EDITOR: 403, PLAIN: 403}),
        ("GET", "/admin/permissions/1", None, {ADMIN: 200, EDITOR: 403, PLAIN: 403}),
        ("POST", "/admin/permissions/3", {"can_db_settings": "y"}, {ADMIN: 302, EDITOR: 403, PLAIN: 403}),
        ("GET", "/admin/users/new", None, {ADMIN: 200, EDITOR: 403, PLAIN: 403}),
        ("POST", "/admin/users/new", {"username": "x"}, {ADMIN: 200, EDITOR: 403, PLAIN: 403}),
        ("GET", "/dbs/new", None, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("POST", "/dbs/new", {"name": ""}, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("GET", f"/dbs/{db_id}/settings", None, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("GET", f"/dbs/{db_id}/settings?tab=integration", None, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("POST", f"/dbs/{db_id}/settings", {"name": ""}, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("GET", f"/dbs/{db_id}/fields/new", None, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("POST", f"/dbs/{db_id}/fields/new", {"name": ""}, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("GET", f"/dbs/{db_id}/fields/{field}/edit", None, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("POST", f"/dbs/{db_id}/fields/{field}/move", {"direction": "down"}, {ADMIN: 302, EDITOR: 302, PLAIN: 403}),
        ("POST", f"/dbs/{db_id}/fields/{pdf}/delete", {}, {ADMIN: 302, EDITOR: 302, PLAIN: 403}),
        ("GET", f"/dbs/{db_id}/menus/new", None, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("POST", f"/dbs/{db_id}/menus/new", {"name": ""}, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("GET", f"/dbs/{db_id}/menus/{menu}/edit", None, {ADMIN: 200, EDITOR: 200, PLAIN: 403}),
        ("POST", f"/dbs/{db_id}/menus/{menu}/delete", {}, {ADMIN: 302, EDITOR: 302, PLAIN: 403}),
        ("POST", f"/dbs/{db_id}/delete", {}, {ADMIN: 302, EDITOR: 302, PLAIN: 403}),
        # Records and the record list need only a login.
        ("GET", f"/menus/{menu}", None, {ADMIN: 200, EDITOR: 200, PLAIN: 200}),
        ("GET", f"/dbs/{db_id}/records/new", None, {ADMIN: 200, EDITOR: 200, PLAIN: 200}),
        ("GET", f"/records/{record}", None, {ADMIN: 200, EDITOR: 200, PLAIN: 200}),
        ("GET", f"/records/{record}/edit", None, {ADMIN: 200, EDITOR: 200, PLAIN: 200}),
        ("POST", f"/records/{record}/delete", {}, {ADMIN: 302, EDITOR: 302, PLAIN: 302}),
    ]


MATRIX_SIZE = 26


@pytest.mark.parametrize("role", [ADMIN, EDITOR, PLAIN])
@pytest.mark.parametrize("index", range(MATRIX_SIZE))
def test_permission_matrix(app, login, sample, role, index):
    urls = guarded_urls(sample)
    assert len(urls) == MATRIX_SIZE
    method, url, data, expected = urls[index]
    user = login(role)
    response = user.get(url) if method == "GET" else user.post(url, data=data)
    assert response.status_code == expected[role], f"{role} {method} {url}"
    if response.status_code == 403:
        body = response.get_data(as_text=True)
        assert "権限がありません" in body
        assert "Traceback" not in body


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
