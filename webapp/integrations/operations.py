"""楽楽明細連携設定: save (only the settings that apply), delete, attach to menus, 接続テスト, clients.

Views, the run jobs and the CLI all come through here. Each action flushes and its caller commits, so a change
and its audit entry are kept together or not at all.

The stored API token follows its origin: it is only ever sent to the scheme + host + port it was entered for
(``IntegrationSetting.token_origin``). A URL with another origin needs the token typed again, on save and in
接続テスト; the run job refuses a setting whose URL and token origin disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from ..core import dependents
from ..core.audit import SECRET_CHANGED, audit, diff
from ..core.crypto import TokenUnreadable, decrypt_secret, encrypt_secret
from ..core.dependents import ORDER_SETTING, Dependent
from ..core.errors import DomainError
from ..databases.models import Database, Field, Menu
from ..extensions import db
from ..meisai.client import ConnectionCheck, MeisaiClient, normalize_base_url, origin_of
from ..meisai.errors import MeisaiError
from ..meisai.transport import DestinationPolicy
from .models import (
    DATA_KIND_LABELS,
    IMPORT_METHOD_LABELS,
    IMPORT_NEW,
    IMPORT_REPLACE,
    ISSUE_IMMEDIATE,
    ISSUE_METHOD_LABELS,
    MAIL_TO_EXECUTOR,
    MAIL_TO_LABELS,
    PDF_KINDS,
    RUN_TIME,
    DataKind,
    IntegrationSetting,
    MenuIntegration,
    RecordUpdateRule,
)

TOKEN_ORIGIN_CHANGED = "URLの接続先が変わったため、APIトークンを入力し直してください。"


class IntegrationError(DomainError):
    """A refused change of a 楽楽明細連携設定 or a menu's システム連携設定."""


class TokenOriginChanged(TokenUnreadable):
    """The setting's URL no longer has the origin its token was entered for: the token must be typed again."""


@dataclass
class SettingValues:
    """Every setting of the form; values of settings that do not apply are ignored by save_setting()."""

    name: str
    base_url: str
    token: str | None  # None or "" keeps the stored token
    data_kind: DataKind
    report_mail: bool = False
    report_mail_to: str = MAIL_TO_EXECUTOR
    report_mail_errors_only: bool = False
    import_setting_id: int | None = None
    overwrite_in_use: bool = False
    overwrite_blank: bool = False
    report_type_id: int | None = 1
    import_method: str = IMPORT_NEW
    skip_approval: bool = False
    issue_method: str = ISSUE_IMMEDIATE
    replace_notify_mail: bool = False
    replace_postal: bool = False
    replace_fax: bool = False
    approval_flow_id: int | None = None
    pdf_field_id: int | None = None
    record_updates: list[tuple[int, str]] = field(default_factory=list)


def _apply(setting: IntegrationSetting, values: SettingValues) -> None:
    """Copy the values that apply to this 連携データ; everything else goes back to its neutral value."""
    kind = values.data_kind
    setting.name = values.name.strip()
    setting.base_url = values.base_url
    setting.data_kind = kind.value
    setting.report_mail = values.report_mail
    setting.report_mail_to = values.report_mail_to if values.report_mail else None
    setting.report_mail_errors_only = values.report_mail_errors_only if values.report_mail else False

    customer = kind == DataKind.CUSTOMER
    setting.import_setting_id = values.import_setting_id if customer else None
    setting.overwrite_in_use = values.overwrite_in_use if customer else False
    setting.overwrite_blank = values.overwrite_blank if customer else False

    report = not customer
    csv_only = kind == DataKind.REPORT_CSV
    setting.report_type_id = values.report_type_id if report else None
    # PDF modes always issue new documents (MEISAI_API.md: isNewIssues is 1 for them).
    setting.import_method = (values.import_method if csv_only else IMPORT_NEW) if report else None
    setting.skip_approval = values.skip_approval if report else False
    setting.issue_method = values.issue_method if report and values.skip_approval else None
    replacing = csv_only and values.import_method == IMPORT_REPLACE
    setting.replace_notify_mail = values.replace_notify_mail if replacing else False
    setting.replace_postal = values.replace_postal if replacing else False
    setting.replace_fax = values.replace_fax if replacing else False
    setting.approval_flow_id = values.approval_flow_id if report else None
    setting.pdf_field_id = values.pdf_field_id if kind in PDF_KINDS else None

    setting.record_updates = [
        RecordUpdateRule(field_id=field_id, value=value, position=i)
        for i, (field_id, value) in enumerate(values.record_updates)
    ]


def snapshot(setting: IntegrationSetting) -> dict[str, str]:
    """The settings as a person reads them, for the audit diff (never the token)."""
    yes_no = {True: "する", False: "しない"}
    shown = {
        "楽楽明細連携名": setting.name,
        "URL": setting.base_url,
        "連携データ": DATA_KIND_LABELS[DataKind(setting.data_kind)],
        "レポートメール": "送信する" if setting.report_mail else "送信しない",
    }
    if setting.report_mail:
        shown["送信先"] = MAIL_TO_LABELS.get(setting.report_mail_to or "", "")
        shown["エラー時のみ"] = yes_no[setting.report_mail_errors_only]
    if setting.kind == DataKind.CUSTOMER:
        shown["取込設定ID"] = str(setting.import_setting_id or "")
        shown["「利用中」の上書き"] = yes_no[setting.overwrite_in_use]
        shown["空白セルの上書き"] = yes_no[setting.overwrite_blank]
    else:
        shown["帳票種別ID"] = str(setting.report_type_id or "")
        shown["取込方法"] = IMPORT_METHOD_LABELS.get(setting.import_method or "", "")
        shown["承認スキップ"] = yes_no[setting.skip_approval]
        if setting.skip_approval:
            shown["発行方法"] = ISSUE_METHOD_LABELS.get(setting.issue_method or "", "")
        if setting.import_method == IMPORT_REPLACE:
            shown["差替発行の通知メール"] = yes_no[setting.replace_notify_mail]
            shown["差替発行の郵送依頼"] = yes_no[setting.replace_postal]
            shown["差替発行のFAX送信"] = yes_no[setting.replace_fax]
        shown["承認フローID"] = str(setting.approval_flow_id or "")
        if setting.kind in PDF_KINDS:
            pdf_field = db.session.get(Field, setting.pdf_field_id) if setting.pdf_field_id else None
            shown["連携対象PDF"] = pdf_field.name if pdf_field else ""
    for i, rule in enumerate(setting.record_updates, start=1):
        target = db.session.get(Field, rule.field_id)
        value = "実行日時" if rule.value == RUN_TIME else rule.value
        shown[f"レコード更新{i}"] = f"{target.name if target else '?'} = {value}"
    return shown


def save_setting(database: Database, values: SettingValues, existing: IntegrationSetting | None = None) -> IntegrationSetting:
    """Create or update a setting. A blank token keeps the stored one, but only for the URL's same origin."""
    token = (values.token or "").strip()
    if existing is None and not token:
        raise IntegrationError("APIトークンを入力してください。", field="token")
    if existing is not None and not token and origin_of(values.base_url) != existing.token_origin:
        raise IntegrationError(TOKEN_ORIGIN_CHANGED, field="token")
    before = snapshot(existing) if existing else {}
    setting = existing or IntegrationSetting(database_id=database.id)
    _apply(setting, values)
    token_changed = bool(token)
    if token_changed:
        setting.token_encrypted = encrypt_secret(token)
        setting.token_origin = origin_of(setting.base_url)
    if existing is None:
        db.session.add(setting)
    db.session.flush()
    changes = diff(before, snapshot(setting))
    if token_changed:
        changes["APIトークン"] = ["", SECRET_CHANGED]
    if existing is None or changes:
        audit("create" if existing is None else "update", "楽楽明細連携設定", setting.id, setting.name, changes)
    db.session.flush()
    return setting


def delete_setting(setting: IntegrationSetting) -> None:
    """Delete a setting; one that runs refer to is hidden instead, so the history keeps its name."""
    audit("delete", "楽楽明細連携設定", setting.id, setting.name, {})
    db.session.query(MenuIntegration).filter_by(setting_id=setting.id).delete()
    if has_history(setting):
        setting.is_deleted = True
    else:
        db.session.delete(setting)
    db.session.flush()


def has_history(setting: IntegrationSetting) -> bool:
    """Whether a history refers to this setting (runs register theirs in core.dependents)."""
    return bool(dependents.usage_of("setting", setting))


def settings_of(database: Database) -> list[IntegrationSetting]:
    return list(db.session.execute(
        select(IntegrationSetting)
        .where(IntegrationSetting.database_id == database.id, IntegrationSetting.is_deleted.is_(False))
        .order_by(IntegrationSetting.id)
    ).scalars())


def menu_integrations(menu: Menu) -> list[MenuIntegration]:
    return list(db.session.execute(
        select(MenuIntegration).join(IntegrationSetting)
        .where(MenuIntegration.menu_id == menu.id, IntegrationSetting.is_deleted.is_(False))
        .order_by(MenuIntegration.position, MenuIntegration.id)
    ).scalars())


def set_menu_integrations(menu: Menu, setting_ids: list[int]) -> None:
    """The integrations in the menu's サブメニュー, in this order (確定 of システム連携設定)."""
    if len(set(setting_ids)) != len(setting_ids):
        raise IntegrationError("同じ連携が2回追加されています。")
    allowed = {s.id: s for s in settings_of(menu.database)}
    for setting_id in setting_ids:
        if setting_id not in allowed:
            raise IntegrationError("このDBの楽楽明細連携設定から選んでください。")
    current = menu_integrations(menu)
    before = [m.setting_id for m in current]
    for attached in current:
        db.session.delete(attached)
    db.session.flush()
    for position, setting_id in enumerate(setting_ids):
        db.session.add(MenuIntegration(menu_id=menu.id, setting_id=setting_id, position=position))
    if before != setting_ids:
        names = lambda ids: "、".join(allowed[i].name if i in allowed else str(i) for i in ids)  # noqa: E731
        audit("update", "システム連携設定", menu.id, f"メニュー「{menu.name}」", {"処理": [names(before), names(setting_ids)]})
    db.session.flush()


# ---- tokens and clients ----------------------------------------------------------------------------------


def token_of(setting: IntegrationSetting, base_url: str | None = None) -> str:
    """The plaintext token, for ``base_url`` (default: the setting's own URL) only if it has the token's origin.

    Raises TokenUnreadable when the encryption key changed (要再入力), TokenOriginChanged (a TokenUnreadable)
    when the URL's origin is not the one the token was entered for.
    """
    if origin_of(base_url or setting.base_url) != setting.token_origin:
        raise TokenOriginChanged("the URL's origin is not the one the stored token was entered for")
    return decrypt_secret(setting.token_encrypted)


def token_readable(setting: IntegrationSetting) -> bool:
    try:
        token_of(setting)
    except TokenUnreadable:
        return False
    return True


def development_mode() -> bool:
    """development/test: http:// on loopback is allowed (the emulator), and no address rule applies."""
    return current_app.config.get("APP_ENV") in ("development", "test")


def allow_insecure_loopback() -> bool:
    return development_mode()


def destination_policy() -> DestinationPolicy:
    """Production: public addresses only, except the hosts the operator allows (MEISAI_ALLOWED_HOSTS)."""
    return DestinationPolicy.of(
        restrict_addresses=not development_mode(),
        allowed_hosts=current_app.config.get("MEISAI_ALLOWED_HOSTS") or (),
    )


def client_for(base_url: str, token: str, **kwargs) -> MeisaiClient:
    """The one way the app builds a client: the environment's URL and address rules."""
    return MeisaiClient(
        base_url, token, allow_insecure_loopback=allow_insecure_loopback(), destination=destination_policy(), **kwargs
    )


def connection_test(base_url: str, token: str) -> ConnectionCheck:
    """接続テスト with the given URL and token (not saved); answers within a few seconds."""
    try:
        with client_for(base_url, token) as client:
            return client.test_connection(timeout=5.0)
    except MeisaiError as exc:
        return ConnectionCheck(False, "invalid_config", exc.user_message, exc.http_status)


def settings_connection_test(url: str, typed_token: str, setting: IntegrationSetting | None,
                             label: str = "") -> tuple[ConnectionCheck, str]:
    """接続テスト of the settings form, written to the audit log (who, which setting, which host, outcome);
    returns the check and the origin it was for ("" when the URL is not acceptable).

    A blank token on an existing setting means its stored token — only if ``url`` has the origin the token was
    entered for; otherwise nothing is sent and the user is asked to type the token again.
    """
    token = (typed_token or "").strip()
    check = None
    base_url = origin = ""
    try:
        base_url = normalize_base_url(url, allow_insecure_loopback())
        origin = origin_of(base_url)
    except MeisaiError as exc:
        check = ConnectionCheck(False, "invalid_config", exc.user_message)
    if check is None and not token and setting is not None:
        try:
            token = token_of(setting, base_url)
        except TokenOriginChanged:
            check = ConnectionCheck(False, "token_origin", TOKEN_ORIGIN_CHANGED)
        except TokenUnreadable:
            token = ""
    if check is None and not token:
        check = ConnectionCheck(False, "invalid_config", "APIトークンを入力してください。")
    if check is None:
        check = connection_test(base_url, token)
    outcome = "成功" if check.ok else f"失敗: {check.message}"
    audit("connection_test", "楽楽明細連携設定", setting.id if setting else None,
          setting.name if setting else (label.strip() or "(新規)"),
          {"接続先": ["", origin or "(URLが正しくありません)"], "結果": ["", outcome]})
    db.session.flush()
    return check, origin


# 電子帳簿保存法: 楽楽明細 indexes documents by 取引年月日, 取引金額 and 取引先. A menu column carries one of them when
# it has that name or a name people commonly give it in a sales DB (columns map to the import format by position,
# so the names need not match).
BOOKKEEPING_NAMES = {
    "取引年月日": ("取引年月日", "取引日", "請求日", "納品日", "発行日", "売上日"),
    "取引金額": ("取引金額", "請求金額", "合計金額", "税込金額", "納品金額", "売上金額"),
    "取引先": ("取引先", "取引先名", "顧客名", "会社名", "得意先", "得意先名"),
}


def bookkeeping_gaps(sending: IntegrationSetting | DataKind, menu: Menu) -> list[str]:
    """The 電子帳簿保存法 search keys a 帳票 integration's menu does not send (a warning, never a refusal); `sending`
    is the setting or the 連携データ it would have (the settings form shows the choice before it is saved)."""
    kind = sending if isinstance(sending, DataKind) else sending.kind
    if kind in (DataKind.CUSTOMER, DataKind.REPORT_PDF):  # CSV carries the keys: PDF only sends no CSV
        return []
    names = {f.name for f in menu.column_fields if not f.is_detail}
    return [key for key, accepted in BOOKKEEPING_NAMES.items() if not names.intersection(accepted)]


def bookkeeping_warnings(setting: IntegrationSetting, kind: DataKind) -> list[tuple[str, list[str]]]:
    """(menu name, missing keys) of each menu the setting is attached to, for the 連携データ `kind`."""
    return [(menu.name, gaps) for menu in attached_menus(setting) if (gaps := bookkeeping_gaps(kind, menu))]


def _setting_dependent(setting: IntegrationSetting) -> Dependent:
    return Dependent(("setting", setting.id), f"楽楽明細連携「{setting.name}」", ORDER_SETTING)


def _settings_using_field(target: Field) -> list[Dependent]:
    """The DB's settings that send `target` as the 連携対象PDF or write it in a レコード更新."""
    return [_setting_dependent(s) for s in settings_of(target.database)
            if s.pdf_field_id == target.id or any(rule.field_id == target.id for rule in s.record_updates)]


dependents.register(
    "integrations",
    menu=lambda menu: [_setting_dependent(attached.setting) for attached in menu_integrations(menu)],
    field=_settings_using_field,
    database=lambda database: [_setting_dependent(s) for s in settings_of(database)],
)


def attached_menus(setting: IntegrationSetting) -> list[Menu]:
    return list(db.session.execute(
        select(Menu).join(MenuIntegration, MenuIntegration.menu_id == Menu.id)
        .where(MenuIntegration.setting_id == setting.id).order_by(Menu.id)
    ).scalars())
