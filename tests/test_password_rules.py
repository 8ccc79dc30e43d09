"""Password strength by zxcvbn's estimate, the rules shown before submitting, each failed rule said once
(issue 14, item 7)."""

from __future__ import annotations

import re

import pytest
from helpers import browser_login

from webapp.auth.passwords import PASSWORD_RULES, password_problems


def errors_of(html: str, field_id: str = "password") -> list[str]:
    match = re.search(rf'<ul class="errors" id="{field_id}-errors">(.*?)</ul>', html, flags=re.S)
    return re.findall(r"<li>(.*?)</li>", match.group(1), flags=re.S) if match else []


def post_new_user(admin, password, **extra):
    return admin.post("/admin/users/new", data={"username": "tanaka", "password": password,
                                                "password_confirm": password, **extra})


def test_the_rules_stand_next_to_the_password_field_before_submitting(users, login):
    html = login("admin").get("/admin/users/new").get_data(as_text=True)
    assert 'id="password-help"' in html and PASSWORD_RULES in html
    field = re.search(r'<input[^>]*id="password"[^>]*>', html).group(0)
    assert 'aria-describedby="password-help"' in field


@pytest.mark.parametrize("password", ["qwerty123456", "abcdefgh1234", "Password2026", "tanaka19870401"])
def test_guessable_passwords_the_old_rules_let_through_are_refused(app, users, login, password):
    from webapp.auth.models import User
    from webapp.extensions import db

    response = post_new_user(login("admin"), password)
    assert response.status_code == 200
    errors = errors_of(response.get_data(as_text=True))
    assert any("推測されやすいパスワードです" in e or "ユーザ名を含めないで" in e for e in errors), errors
    with app.app_context():
        assert db.session.query(User).filter_by(username="tanaka").count() == 0


def test_each_failed_rule_is_said_once(users, login):
    response = post_new_user(login("admin"), "short1")
    errors = errors_of(response.get_data(as_text=True))
    assert len(errors) == len(set(errors)), errors
    assert sum("10文字以上" in e for e in errors) == 1
    assert any("推測されやすい" in e for e in errors)
    # Several broken rules are all said, in the order the rules are listed.
    errors = errors_of(post_new_user(login("admin"), "tanaka").get_data(as_text=True))
    assert [e.split("。")[0] for e in errors] == ["パスワードは10文字以上にしてください",
                                                 "パスワードには英字と数字の両方を含めてください",
                                                 "パスワードにユーザ名を含めないでください",
                                                 "推測されやすいパスワードです"]


def test_the_hint_is_japanese_and_names_what_is_weak():
    (problem,) = password_problems("qwerty123456", "tanaka")
    assert "よく使われるパスワード" in problem and "password" not in problem.lower()
    # The user's own name and mail address count as guessable words, split into their parts.
    assert password_problems("Hanako-2026", "tanaka") == []
    (problem,) = password_problems("Hanako-2026", "tanaka", "山田 花子", "yamada.hanako@example.jp")
    assert problem.startswith("推測されやすいパスワードです") and "メールアドレスの一部" in problem


def test_strong_passphrases_pass_without_symbols_or_capitals():
    assert password_problems("sakura2026 blue kettle", "tanaka") == []
    assert password_problems("Sakura-2026-blue", "tanaka") == []


def test_a_long_password_is_estimated_without_error():
    long = "the kettle sings at 7 while snow falls on the quiet harbour of otaru and gulls argue over bread"
    assert 72 < len(long) <= 128
    assert password_problems(long, "tanaka") == []  # past zxcvbn's own limit of 72, no error
    assert password_problems("k1" * 65, "tanaka")[0] == "パスワードは128文字以内にしてください。"


def test_create_admin_prompt_shows_the_rules_and_refuses_a_guessable_password(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "boss"], input="qwerty123456\nqwerty123456\n")
    assert result.exit_code != 0
    prompt, _, refusal = result.output.partition("Error:")
    assert PASSWORD_RULES in prompt  # before the password is typed
    assert "推測されやすいパスワードです" in refusal and "よく使われるパスワード" in refusal
    assert "qwerty123456" not in result.output


@pytest.mark.browser
def test_a_person_sees_the_rules_types_a_weak_password_then_a_strong_one(app, users, live_server, page, tmp_path):
    page.set_viewport_size({"width": 1366, "height": 900})
    browser_login(page, live_server, "admin")
    page.goto(f"{live_server}/admin/users/new")
    password = page.locator("#password")
    # The rules are announced with the field (aria-describedby) before anything is typed.
    description = page.locator("#" + password.get_attribute("aria-describedby"))
    assert "英字と数字の両方" in description.inner_text()
    page.get_by_label("ユーザ名").fill("tanaka")
    password.fill("qwerty123456")
    page.locator("#password_confirm").fill("qwerty123456")
    page.get_by_role("button", name="確定").click()
    errors = page.locator("#password-errors li").all_inner_texts()
    assert len(errors) == 1 and "推測されやすいパスワードです" in errors[0] and "よく使われるパスワード" in errors[0]
    assert "英字と数字の両方" in page.locator("#password-help").inner_text()  # still next to the field
    page.screenshot(path=str(tmp_path / "user_new_1366.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(tmp_path / "user_new_390.png"), full_page=True)
    page.locator("#password").fill("sakura2026 blue kettle")
    page.locator("#password_confirm").fill("sakura2026 blue kettle")
    page.get_by_role("button", name="確定").click()
    page.wait_for_url("**/admin/permissions/*")
    assert "ユーザ「tanaka」を追加しました" in page.content()
