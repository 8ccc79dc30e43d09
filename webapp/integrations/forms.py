"""The 楽楽明細連携設定 form: one class decides which settings apply, for rendering and validation alike.

`active_field_names()` reads the submitted (or stored) choices — 連携データ, 取込方法, 承認スキップ, レポートメール —
and only active fields are rendered, validated and stored. htmx re-posts the form when a controlling choice
changes and the server renders the new set of fields; no rule is duplicated in JavaScript.
"""

from __future__ import annotations

from wtforms import (
    BooleanField,
    Form,
    FormField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, ValidationError

from ..core.forms import BaseForm, FieldList
from ..core.params import parse_id
from ..databases.fieldtypes import FieldValueError
from ..databases.models import ORIGIN_INPUT, Database, Field
from ..meisai.client import normalize_base_url
from ..meisai.errors import MeisaiConfigError, MeisaiUrlError
from ..meisai.transport import check_destination
from .models import (
    DATA_KIND_LABELS,
    IMPORT_METHOD_LABELS,
    IMPORT_REPLACE,
    ISSUE_METHOD_LABELS,
    MAIL_TO_LABELS,
    PDF_KINDS,
    RECORD_UPDATE_MAX,
    RUN_TIME,
    DataKind,
    IntegrationSetting,
)
from .operations import SettingValues, allow_insecure_loopback, destination_policy

YES_NO = [("0", "しない"), ("1", "する")]
ID_MAX_DIGITS = 9


def record_update_fields(database: Database) -> list[Field]:
    """Fields a レコード更新 may set: header fields people type, of a type that may be a レコード更新 target
    (テキスト(1行), 選択肢(1件選択), 日時)."""
    return [f for f in database.header_fields if f.kind.record_update and f.origin == ORIGIN_INPUT]


def pdf_target_fields(database: Database) -> list[Field]:
    """連携対象PDF candidates: header fields of a type that may be one (自動生成ファイル), never link-target or
    dependent ones."""
    return [f for f in database.header_fields if f.kind.pdf_target and f.origin == ORIGIN_INPUT]


def _normalized_url(text: str | None) -> str:
    return normalize_base_url(text or "", allow_insecure_loopback=allow_insecure_loopback())


class PositiveId:
    """取込設定ID / 帳票種別ID / 承認フローID: a positive integer in half-width digits."""

    def __init__(self, required: bool):
        self.required = required

    def __call__(self, form, field):
        text = (field.data or "").strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
        field.parsed = None
        if not text:
            if self.required:
                raise ValidationError("入力してください(1以上の整数)。")
            return
        if not text.isdecimal():
            raise ValidationError("1以上の整数(半角数字)で入力してください。")
        if len(text) > ID_MAX_DIGITS:
            raise ValidationError(f"{ID_MAX_DIGITS}桁以内で入力してください。")
        if int(text) < 1:
            raise ValidationError("1以上の整数(半角数字)で入力してください。")
        field.parsed = int(text)


class RecordUpdateRow(Form):
    field_id = SelectField("更新する項目", coerce=str, validate_choice=False)
    mode = RadioField("値", choices=[("fixed", "指定した値"), (RUN_TIME, "実行日時")], default="fixed",
                      validate_choice=False)
    value = StringField("更新後の値")


class IntegrationSettingForm(BaseForm):
    name = StringField("楽楽明細連携名", validators=[DataRequired(message="楽楽明細連携名を入力してください。"),
                                                  Length(max=100, message="100文字以内で入力してください。")])
    url = StringField("URL", validators=[Length(max=500, message="500文字以内で入力してください。")])
    token = PasswordField("APIトークン", validators=[Length(max=500, message="500文字以内で入力してください。")])
    data_kind = RadioField("連携データ", choices=[(k.value, v) for k, v in DATA_KIND_LABELS.items()],
                           default=DataKind.CUSTOMER.value)
    report_mail = RadioField("レポートメール", choices=[("0", "送信しない"), ("1", "送信する")], default="0")
    report_mail_to = RadioField("送信先", choices=list(MAIL_TO_LABELS.items()), default="executor")
    report_mail_errors_only = BooleanField("エラー時のみ送信する")

    import_setting_id = StringField("取込設定ID", validators=[PositiveId(required=False)])
    overwrite_in_use = RadioField("「利用中」の上書き", choices=YES_NO, default="0")
    overwrite_blank = RadioField("空白セルの上書き", choices=YES_NO, default="0")

    report_type_id = StringField("帳票種別ID", validators=[PositiveId(required=True)], default="1")
    import_method = RadioField("取込方法", choices=list(IMPORT_METHOD_LABELS.items()), default="new")
    skip_approval = RadioField("承認スキップ", choices=YES_NO, default="0")
    issue_method = RadioField("発行方法", choices=list(ISSUE_METHOD_LABELS.items()), default="immediate")
    replace_notify_mail = RadioField("差替発行の通知メール", choices=[("0", "送信しない"), ("1", "送信する")], default="0")
    replace_postal = RadioField("差替発行の郵送依頼", choices=[("0", "依頼しない"), ("1", "依頼する")], default="0")
    replace_fax = RadioField("差替発行のFAX送信", choices=[("0", "送信しない"), ("1", "送信する")], default="0")
    approval_flow_id = StringField("承認フローID", validators=[PositiveId(required=False)])
    pdf_field_id = SelectField("連携対象PDF", coerce=str, validate_choice=False)

    record_updates = FieldList(FormField(RecordUpdateRow), "レコード更新", min_entries=0, max_entries=RECORD_UPDATE_MAX)

    def __init__(self, *args, database: Database, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.database = database
        self.editing = editing
        self.normalized_url: str | None = None
        self.update_fields = {str(f.id): f for f in record_update_fields(database)}
        self.pdf_fields = {str(f.id): f for f in pdf_target_fields(database)}
        self.pdf_field_id.choices = [("", "(選択してください)")] + [(k, f.name) for k, f in self.pdf_fields.items()]
        for row in self.record_updates:
            row.form.field_id.choices = [("", "(項目を選択)")] + [
                (k, f"{f.name}({f.type_label})") for k, f in self.update_fields.items()
            ]

    # ---- which settings apply --------------------------------------------------------------------------

    @property
    def kind(self) -> DataKind:
        try:
            return DataKind(self.data_kind.data)
        except ValueError:
            return DataKind.CUSTOMER

    def active_field_names(self) -> set[str]:
        active = {"csrf_token", "name", "url", "token", "data_kind", "report_mail", "record_updates"}
        if self.report_mail.data == "1":
            active |= {"report_mail_to", "report_mail_errors_only"}
        if self.kind == DataKind.CUSTOMER:
            return active | {"import_setting_id", "overwrite_in_use", "overwrite_blank"}
        active |= {"report_type_id", "skip_approval", "approval_flow_id"}
        if self.skip_approval.data == "1":
            active.add("issue_method")
        if self.kind == DataKind.REPORT_CSV:
            active.add("import_method")
            if self.import_method.data == IMPORT_REPLACE:
                active |= {"replace_notify_mail", "replace_postal", "replace_fax"}
        if self.kind in PDF_KINDS:
            active.add("pdf_field_id")
        return active

    def is_active(self, name: str) -> bool:
        return name in self.active_field_names()

    # ---- validation of active fields only ---------------------------------------------------------------

    def validate(self, extra_validators=None) -> bool:
        self._errors = None
        active = self.active_field_names()
        success = True
        for name, field in self._fields.items():
            if name not in active:
                field.errors = []
                continue
            inline = getattr(self.__class__, f"validate_{name}", None)
            chain = [inline] if inline else []
            if extra_validators and name in extra_validators:
                chain.extend(extra_validators[name])
            if not field.validate(self, chain):
                success = False
        return success

    def validate_url(self, field):
        try:
            self.normalized_url = _normalized_url(field.data)
            # Production: a host naming an internal address is refused here already (connecting checks again).
            check_destination(self.normalized_url, destination_policy())
        except MeisaiConfigError as exc:
            raise ValidationError(exc.user_message) from None

    def tidied_url(self) -> str:
        """The URL for a re-render: a pasted admin URL cut at /backadmin (normalised), else as typed.

        A URL that is not acceptable stays as typed; 確定 then says what is wrong with it.
        """
        try:
            return _normalized_url(self.url.data)
        except MeisaiUrlError:
            return self.url.data or ""

    def validate_token(self, field):
        token = (field.data or "").strip()
        if not token:
            if not self.editing:
                raise ValidationError("APIトークンを入力してください。")
            return  # blank on edit: keep the stored token
        if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in token):
            raise ValidationError("APIトークンに使えない文字(空白や全角文字など)が含まれています。")

    def validate_pdf_field_id(self, field):
        if not self.pdf_fields:
            raise ValidationError("このDBに自動生成ファイルのヘッダ項目がありません。先に項目を追加してください。")
        if field.data not in self.pdf_fields:
            raise ValidationError("連携対象PDFにする自動生成ファイル項目を選んでください。")

    def validate_record_updates(self, field):
        rows = [row.form for row in field if row.form.field_id.data]
        if len(rows) > RECORD_UPDATE_MAX:
            raise ValidationError(f"レコード更新は最大{RECORD_UPDATE_MAX}個までです。")
        seen = set()
        for row in rows:
            target = self.update_fields.get(row.field_id.data)
            if target is None:
                row.field_id.errors = ["テキスト(1行)・選択肢(1件選択)・日時の項目から選んでください。"]
                raise ValidationError("レコード更新に指定できない項目が選ばれています。")
            if target.id in seen:
                row.field_id.errors = [f"項目「{target.name}」が重複しています。"]
                raise ValidationError(f"レコード更新の項目「{target.name}」が重複しています。")
            seen.add(target.id)
            row.parsed = self._record_update_value(target, row)

    @staticmethod
    def _record_update_value(target: Field, row) -> str:
        value = (row.value.data or "").strip()
        if target.kind.accepts_run_time and row.mode.data == RUN_TIME:
            return RUN_TIME
        try:
            parsed = target.kind.parse(value, options=target.options, required=not target.kind.record_update_blank,
                                       field=target)
        except FieldValueError as exc:
            row.value.errors = [str(exc)]
            raise ValidationError(f"「{target.name}」の更新後の値: {exc}") from None
        return parsed or ""

    def record_update_values(self) -> list[tuple[int, str]]:
        """After validate(): the (field id, value) rows to store."""
        rows = [row.form for row in self.record_updates if row.form.field_id.data]
        return [(self.update_fields[row.field_id.data].id, row.parsed) for row in rows]

    # ---- the form ↔ the setting ----------------------------------------------------------------------

    @staticmethod
    def data_of(setting: IntegrationSetting) -> dict:
        """A stored setting as the form's data (the token never: it is typed again or kept)."""
        as_flag = lambda value: "1" if value else "0"  # noqa: E731
        rows = []
        for rule in setting.record_updates:
            run_time = rule.value == RUN_TIME
            rows.append({"field_id": str(rule.field_id), "mode": RUN_TIME if run_time else "fixed",
                         "value": "" if run_time else rule.field.kind.input_value(rule.value)})
        return {
            "name": setting.name, "url": setting.base_url, "token": "", "data_kind": setting.data_kind,
            "report_mail": as_flag(setting.report_mail), "report_mail_to": setting.report_mail_to or "executor",
            "report_mail_errors_only": setting.report_mail_errors_only,
            "import_setting_id": str(setting.import_setting_id or ""),
            "overwrite_in_use": as_flag(setting.overwrite_in_use), "overwrite_blank": as_flag(setting.overwrite_blank),
            "report_type_id": str(setting.report_type_id or "1"), "import_method": setting.import_method or "new",
            "skip_approval": as_flag(setting.skip_approval), "issue_method": setting.issue_method or "immediate",
            "replace_notify_mail": as_flag(setting.replace_notify_mail),
            "replace_postal": as_flag(setting.replace_postal), "replace_fax": as_flag(setting.replace_fax),
            "approval_flow_id": str(setting.approval_flow_id or ""),
            "pdf_field_id": str(setting.pdf_field_id or ""), "record_updates": rows,
        }

    def values(self) -> SettingValues:
        """After validate(): what was entered, for save_setting (which keeps only the settings that apply)."""
        return SettingValues(
            name=self.name.data,
            base_url=self.normalized_url,
            token=(self.token.data or "").strip() or None,
            data_kind=self.kind,
            report_mail=self.report_mail.data == "1",
            report_mail_to=self.report_mail_to.data,
            report_mail_errors_only=bool(self.report_mail_errors_only.data),
            import_setting_id=getattr(self.import_setting_id, "parsed", None),
            overwrite_in_use=self.overwrite_in_use.data == "1",
            overwrite_blank=self.overwrite_blank.data == "1",
            report_type_id=getattr(self.report_type_id, "parsed", None),
            import_method=self.import_method.data,
            skip_approval=self.skip_approval.data == "1",
            issue_method=self.issue_method.data,
            replace_notify_mail=self.replace_notify_mail.data == "1",
            replace_postal=self.replace_postal.data == "1",
            replace_fax=self.replace_fax.data == "1",
            approval_flow_id=getattr(self.approval_flow_id, "parsed", None),
            pdf_field_id=parse_id(self.pdf_field_id.data),
            record_updates=self.record_update_values(),
        )
