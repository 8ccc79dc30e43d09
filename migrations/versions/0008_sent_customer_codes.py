"""sent_customer_codes: the 顧客コード each 楽楽明細 (base URL) received from a successful 顧客データ run

Filled from the runs made before this version: the 顧客コード that the imported records (run_records 'ok') hold
now, read through the run's CSV columns (the sent files are not read here).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 20:10:00

"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BATCH = 500


def upgrade():
    op.create_table('sent_customer_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=False),
    sa.Column('code', sa.String(length=200), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_sent_customer_codes_run_id_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sent_customer_codes')),
    sa.UniqueConstraint('base_url', 'code', name='uq_sent_customer_codes_base_url_code')
    )
    _fill_from_earlier_runs(op.get_bind())


def _fill_from_earlier_runs(connection):
    settings = sa.table('integration_settings', sa.column('id'), sa.column('base_url'), sa.column('data_kind'))
    runs = sa.table('runs', sa.column('id'), sa.column('setting_id'), sa.column('status'),
                    sa.column('column_field_ids', JSON), sa.column('finished_at'))
    fields = sa.table('fields', sa.column('id'), sa.column('name'), sa.column('placement'))
    run_records = sa.table('run_records', sa.column('run_id'), sa.column('record_id'), sa.column('status'))
    records = sa.table('records', sa.column('id'), sa.column('data', JSON))
    ledger = sa.table('sent_customer_codes', sa.column('base_url'), sa.column('code'), sa.column('run_id'),
                      sa.column('sent_at'))
    seen = set()
    earlier = connection.execute(
        sa.select(runs.c.id, runs.c.column_field_ids, runs.c.finished_at, settings.c.base_url)
        .join(settings, settings.c.id == runs.c.setting_id)
        .where(settings.c.data_kind == 'customer', runs.c.status.in_(['completed', 'partial']))
        .order_by(runs.c.id)
    ).all()
    for run_id, field_ids, finished_at, base_url in earlier:
        code_field = connection.execute(
            sa.select(fields.c.id).where(fields.c.id.in_(list(field_ids or [])), fields.c.name == '顧客コード',
                                         fields.c.placement == 'header')
        ).scalar()
        if code_field is None:
            continue
        record_ids = list(connection.execute(
            sa.select(run_records.c.record_id).where(run_records.c.run_id == run_id, run_records.c.status == 'ok')
        ).scalars())
        for start in range(0, len(record_ids), BATCH):
            rows = []
            for data in connection.execute(
                sa.select(records.c.data).where(records.c.id.in_(record_ids[start:start + BATCH]))
            ).scalars():
                code = str((data or {}).get(str(code_field)) or '').strip()
                if code and (base_url, code) not in seen:
                    seen.add((base_url, code))
                    rows.append({'base_url': base_url, 'code': code[:200], 'run_id': run_id, 'sent_at': finished_at or datetime.now(UTC)})
            if rows:
                connection.execute(ledger.insert(), rows)


def downgrade():
    op.drop_table('sent_customer_codes')
