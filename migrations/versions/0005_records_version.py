"""databases.records_version, records_added_version: the versions the record-list count cache is keyed on

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 01:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('databases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('records_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('records_added_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('databases', schema=None) as batch_op:
        batch_op.drop_column('records_added_version')
        batch_op.drop_column('records_version')
