"""Imports every model so that Alembic and create_all() see the whole schema, the session hooks that keep
Database.records_version moving wherever records are written (databases/record_counts.py), and every field type
(the 自動生成ファイル type registers itself from documents)."""

from .auth.models import User  # noqa: F401
from .core.audit import AuditEntry  # noqa: F401
from .databases import record_counts  # noqa: F401
from .databases.models import Database, Field, Menu, MenuColumn, MenuFilter, Record  # noqa: F401
from .documents import fieldtype  # noqa: F401
from .integrations.models import IntegrationSetting, MenuIntegration, RecordUpdateRule  # noqa: F401
from .mail.models import OutboxMail  # noqa: F401
from .runs.models import Run, RunCall, RunRecord  # noqa: F401
from .timers.models import SchedulerHeartbeat, Timer, TimerSlot  # noqa: F401
