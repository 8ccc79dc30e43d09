"""What a refused call or a failed run means for the person who fixes it, said once and truthfully.

楽楽明細 answers in its own terms: parameter names, error codes and one error per CSV row. A refusal of a whole
request or file (an unknown 取込設定ID, a file it cannot read, every row with the same column-count error) is
turned here into one sentence naming what to change, in this product or in 楽楽明細, so that the run detail and
the report mail say it once instead of once per record, and never call 「一部」 what was all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..integrations.models import DataKind, IntegrationSetting
from ..meisai import contract
from ..meisai.errors import MeisaiError, MeisaiFileError, MeisaiNotFound
from .models import RunStatus

NOTHING_IMPORTED = "この回の送信分は何も取り込まれていません。"
# The note on the calls after one that was refused: they would be refused for the same reason.
STOPPED_NOTE = "前の回の送信が楽楽明細に受け付けられなかったため、送信していません(同じ理由で受け付けられないため)。"
_COLUMN_COUNT = re.compile(contract.COLUMN_COUNT_ROW_ERROR_PATTERN)

# An unknown ID: where the person finds the right one in 楽楽明細 (the manual's words) and which setting to fix.
_UNKNOWN_ID_ADVICE = {
    "settingId": ("取込設定ID", "取込フォーマット設定",
                  "楽楽明細(管理側)の基本設定 ›「顧客CSVの取込フォーマット設定」で使用する設定の取込設定IDを確認し、"
                  "楽楽明細連携設定の「取込設定ID」を直してください(未入力にすると、取込設定IDが最も若い設定を使います)。"),
    "reportTypeId": ("帳票種別ID", "帳票",
                     "楽楽明細(管理側)の基本設定 ›「帳票の設定」で連携したい帳票の[詳細]に表示される帳票種別IDを確認し、"
                     "楽楽明細連携設定の「帳票種別ID」を直してください。"),
    "approvalFlowId": ("承認フローID", "承認フロー",
                       "楽楽明細(管理側)の基本設定 ›「承認フロー設定」で承認フローIDを確認し、楽楽明細連携設定の「承認フローID」を"
                       "直すか、承認フローオプションをお使いでなければ未入力にしてください。"),
}


def explain_refusal(exc: MeisaiError, params: dict) -> str:
    """A refused POST (nothing of it was imported), in terms of what to change; the API's own words otherwise."""
    if isinstance(exc, MeisaiNotFound):
        for description in exc.descriptions:
            if description.name in _UNKNOWN_ID_ADVICE:
                label, thing, advice = _UNKNOWN_ID_ADVICE[description.name]
                value = params.get(description.name, description.value)
                return (f"楽楽明細に{label} {value} の{thing}がないため、送信を受け付けませんでした。{advice}"
                        f"{NOTHING_IMPORTED}")
    if isinstance(exc, MeisaiFileError):
        codes = {d.code for d in exc.descriptions}
        if contract.E_FILE_ENCODING in codes:
            return ("楽楽明細が送信したCSVファイルを文字コードの違い(Windows-31J(Shift_JIS)として読めない)で受け付けませんでした。"
                    "このCSVはWindows-31Jで作成しています。下の「送信ファイル」と「通信ログ」を添えて楽楽明細のサポートに"
                    f"お問い合わせください。{NOTHING_IMPORTED}")
        if contract.E_FILE_FORMAT in codes:
            return ("楽楽明細が送信したCSVファイルの形式を読めないとして受け付けませんでした。下の「送信ファイル」と「通信ログ」を"
                    f"添えて楽楽明細のサポートにお問い合わせください。{NOTHING_IMPORTED}")
    return exc.user_message


def whole_file_rejection(row_errors: Sequence[dict], *, record_count: int, setting: IntegrationSetting,
                         params: dict, column_count: int, menu_name: str | None) -> str | None:
    """One sentence when every row of a call (all its `record_count` records failed) was refused for one and the
    same reason — always so for a column count that differs from the import format: the file, not its rows, is
    wrong. None when the rows failed for reasons of their own."""
    reasons = {(e.get("name") or "", e.get("msg") or "") for e in row_errors}
    if len(reasons) != 1:
        return None
    name, msg = reasons.pop()
    match = _COLUMN_COUNT.search(msg)
    if match:
        return column_count_advice(int(match["sent"] or column_count), int(match["expected"]), setting=setting,
                                   params=params, menu_name=menu_name)
    if record_count < 2:
        return None  # one record's own reason
    return f"この回の{record_count}件すべてが同じ理由で取り込まれませんでした: {f'{name}: ' if name else ''}{msg}"


def column_count_advice(sent: int, expected: int, *, setting: IntegrationSetting, params: dict,
                        menu_name: str | None) -> str:
    """The CSV has `sent` columns where 楽楽明細's import format expects `expected`: which one to change."""
    columns = f"メニュー「{menu_name}」の表示項目" if menu_name else "送信した項目(メニュー設定なし: DBの全項目)"
    fewer_or_more = f"{sent - expected}列減らす" if sent > expected else f"{expected - sent}列増やす"
    if setting.kind == DataKind.CUSTOMER:
        setting_id = params.get("settingId")
        which = f"取込設定ID {setting_id}" if setting_id else "取込設定ID 未入力: 最も若いIDの取込フォーマット設定"
        other = f"{sent}列の取込フォーマット設定の取込設定IDを楽楽明細連携設定で指定してください"
        target = f"楽楽明細の取込設定({which})"
    else:
        which = f"帳票種別ID {params.get('reportTypeId') or 1}"
        other = f"{sent}列を取り込む帳票の帳票種別IDを楽楽明細連携設定で指定してください"
        target = f"楽楽明細の帳票の取込項目({which})"
    return (f"列の数が合わないため、楽楽明細はファイル全体を取り込みませんでした。{columns}は{sent}列ですが、"
            f"{target}は{expected}列です。メニュー設定で表示項目を{fewer_or_more}か、{other}。{NOTHING_IMPORTED}")


def run_summary(*, status: str, record_count: int, error_count: int, invalid_count: int,
                call_messages: Sequence[str]) -> str:
    """The run's closing message: what went wrong, never 「一部」 when it was every record."""
    own = list(dict.fromkeys(m for m in call_messages if m and m != STOPPED_NOTE))
    if status == RunStatus.ERROR:
        if own:
            return " ".join(own)
        if invalid_count == record_count:
            return (f"送信できるレコードがありませんでした(対象{record_count}件すべてが送信対象外です)。"
                    "理由はレコードごとのエラーを確認してください。何も送信していません。")
        return (f"対象{record_count}件すべてが送信できなかったか、楽楽明細で取込エラーになりました。"
                "レコードごとのエラーを確認してください。")
    if status == RunStatus.PARTIAL:
        head = f"対象{record_count}件のうち{error_count}件が送信できなかったか、楽楽明細で取込エラーになりました。"
        return " ".join([head, *own])
    return " ".join(own)
