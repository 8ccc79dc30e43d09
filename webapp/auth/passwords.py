"""Password rules: length, letters and digits, not the user's own name, and zxcvbn's strength estimate.

One home for the rules: the forms show PASSWORD_RULES next to every new-password field, the CLI prompts
with it, and password_problems() returns each broken rule once, in the order the rules are listed.
"""

from __future__ import annotations

import re
import threading

from zxcvbn import zxcvbn

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
# zxcvbn scores 0-4; 3 = "safely unguessable" (about 10^10 guesses, beyond an online attack by far).
MIN_STRENGTH_SCORE = 3
# zxcvbn refuses longer inputs (72 by default); a longer password is judged by its first 72 characters.
_ESTIMATE_LENGTH = 72

PASSWORD_RULES = (f"{PASSWORD_MIN_LENGTH}文字以上で、英字と数字の両方を含めてください。"
                  "ユーザ名・氏名・メールアドレスを含むもの、よく使われるパスワードや単語・キーボードの並び・"
                  "連続した文字・日付など推測されやすいものは使えません(単語をいくつか組み合わせると安全です)。")

# zxcvbn's warnings (English) as hints people here can read; unknown ones give the general message only.
_HINTS = {
    "This is a top-10 common password.": "よく使われるパスワードです。",
    "This is a top-100 common password.": "よく使われるパスワードです。",
    "This is a very common password.": "よく使われるパスワードです。",
    "This is similar to a commonly used password.": "よく使われるパスワードに似ています。",
    "A word by itself is easy to guess.": "単語ひとつだけでは推測されやすくなります。",
    "Names and surnames by themselves are easy to guess.": "名前や名字だけでは推測されやすくなります。",
    "Common names and surnames are easy to guess.": "よくある名前や名字は推測されやすくなります。",
    "Straight rows of keys are easy to guess.": "キーボードの並び(qwerty など)は推測されやすくなります。",
    "Short keyboard patterns are easy to guess.": "キーボード上の短いパターンは推測されやすくなります。",
    'Repeats like "aaa" are easy to guess.': "同じ文字の繰り返し(aaa など)は推測されやすくなります。",
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".':
        "同じ並びの繰り返し(abcabc など)は推測されやすくなります。",
    'Sequences like "abc" or "6543" are easy to guess.': "連続した文字(abc、6543 など)は推測されやすくなります。",
    "Recent years are easy to guess.": "最近の年(西暦)は推測されやすくなります。",
    "Dates are often easy to guess.": "日付は推測されやすくなります。",
}

# zxcvbn keeps the user inputs of a call in a module-level dictionary: one estimate at a time per process.
_zxcvbn_lock = threading.Lock()


def password_problems(password: str, username: str = "", *personal: str) -> list[str]:
    """Every rule `password` breaks (Japanese, each once), or [] when it follows them all.

    `personal` values (氏名, メールアドレス) count as guessable words like the user name.
    """
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"パスワードは{PASSWORD_MIN_LENGTH}文字以上にしてください。")
    elif len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"パスワードは{PASSWORD_MAX_LENGTH}文字以内にしてください。")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        problems.append("パスワードには英字と数字の両方を含めてください。")
    name = username.strip().lower()
    if name and name in password.lower():
        problems.append("パスワードにユーザ名を含めないでください。")
    if password:
        hint = _weakness(password, _personal_words(username, *personal))
        if hint is not None:
            problems.append(f"推測されやすいパスワードです。{hint}単語を組み合わせるなどして、より推測されにくいものにしてください。")
    return problems


def _personal_words(*values: str) -> list[str]:
    """The values and their parts (yamada.hanako@example.jp → yamada, hanako, …): zxcvbn matches whole words."""
    words = []
    for value in values:
        value = (value or "").strip()
        if value:
            words += [value, *(part for part in re.split(r"[\W_]+", value) if len(part) >= 3)]
    return words


def _weakness(password: str, user_inputs: list[str]) -> str | None:
    """None when zxcvbn rates the password strong enough, else a hint (possibly empty)."""
    with _zxcvbn_lock:
        result = zxcvbn(password[:_ESTIMATE_LENGTH], user_inputs=user_inputs)
    if result["score"] >= MIN_STRENGTH_SCORE:
        return None
    if any(match.get("dictionary_name") == "user_inputs" for match in result["sequence"]):
        return "ユーザ名・氏名・メールアドレスの一部が含まれています。"
    return _HINTS.get(result["feedback"].get("warning", ""), "")
