from __future__ import annotations

from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp, ValidationError

from ..core.forms import BaseForm
from .passwords import PASSWORD_RULES, password_problems


class PasswordRules:
    """Every password rule the new password breaks, each said once (the rules: webapp/auth/passwords.py).

    `personal` names the form's fields whose values the password must not be built from (user name first).
    """

    def __init__(self, *personal: str):
        self.personal = personal

    def __call__(self, form, field):
        problems = password_problems(field.data or "", *[(form[name].data or "") for name in self.personal])
        if problems:
            field.errors.extend(problems[:-1])
            raise ValidationError(problems[-1])


class LoginForm(BaseForm):
    username = StringField("ユーザ名", validators=[DataRequired(message="ユーザ名を入力してください。"), Length(max=64)])
    password = PasswordField("パスワード", validators=[DataRequired(message="パスワードを入力してください。")])


class GlobalPermissionForm(BaseForm):
    can_db_settings = BooleanField("DB設定")
    can_system_integration = BooleanField("システム連携")


class UserForm(BaseForm):
    username = StringField(
        "ユーザ名",
        validators=[
            DataRequired(message="ユーザ名を入力してください。"),
            Length(max=64, message="ユーザ名は64文字以内で入力してください。"),
            Regexp(r"^[A-Za-z0-9_.@-]+$", message="ユーザ名は半角英数字と _ . @ - で入力してください。"),
        ],
    )
    display_name = StringField("氏名", validators=[Length(max=100, message="氏名は100文字以内で入力してください。")])
    email = EmailField(
        "メールアドレス",
        validators=[Optional(), Email(message="メールアドレスの形式が正しくありません。"), Length(max=254)],
    )
    password = PasswordField(
        "パスワード",
        validators=[DataRequired(message="パスワードを入力してください。"),
                    PasswordRules("username", "display_name", "email")],
        description=PASSWORD_RULES,
    )
    password_confirm = PasswordField(
        "パスワード(確認)", validators=[EqualTo("password", message="確認用パスワードが一致しません。")]
    )
    is_admin = BooleanField("管理者")
