from __future__ import annotations

from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp, ValidationError

from ..core.forms import BaseForm
from .operations import PASSWORD_MIN_LENGTH, password_problem


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
        validators=[
            DataRequired(message="パスワードを入力してください。"),
            Length(min=PASSWORD_MIN_LENGTH, max=128, message=f"パスワードは{PASSWORD_MIN_LENGTH}文字以上で入力してください。"),
        ],
        description=f"{PASSWORD_MIN_LENGTH}文字以上で、英字と数字の両方を含めてください(ユーザ名を含むもの、よく使われるものは使えません)。",
    )

    def validate_password(self, field):
        problem = password_problem(field.data or "", self.username.data or "")
        if problem:
            raise ValidationError(problem)
    password_confirm = PasswordField(
        "パスワード(確認)", validators=[EqualTo("password", message="確認用パスワードが一致しません。")]
    )
    is_admin = BooleanField("管理者")
