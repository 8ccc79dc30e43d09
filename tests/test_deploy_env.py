"""deploy/env.example lists every environment variable the product reads (issue 9: a newcomer's one list)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READERS = re.compile(r"""(?:environ\.get|getenv|_bool|_int)\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def variables_read() -> set[str]:
    sources = [*ROOT.glob("webapp/**/*.py"), ROOT / "deploy" / "gunicorn.conf.py", ROOT / "worker.py"]
    names = {name for path in sources for name in READERS.findall(path.read_text(encoding="utf-8"))}
    # The PDF fonts are named in a table (webapp/documents/fonts.py), not in a call.
    return names | {"PDF_FONT_GOTHIC", "PDF_FONT_MINCHO"}


def test_env_example_names_every_variable_the_product_reads():
    example = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    mentioned = set(re.findall(r"\b([A-Z][A-Z0-9_]+)\b", example))
    names = variables_read()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "WORKER_NICE", "GUNICORN_WORKERS"} <= names
    # Settings appear as KEY=value lines; demo/test-only ones are at least named in the closing note.
    assert names - listed <= {"DEMO_ADMIN_PASSWORD", "DEMO_USER_PASSWORD", "MEISAI_DEMO_TOKEN",
                              "MEISAI_EMULATOR_URL", "PASSWORD_HASH_METHOD"}
    assert names <= mentioned
