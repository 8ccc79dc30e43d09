"""integration_settings.token_origin: the scheme://host:port the stored API token was entered for

Existing tokens were entered for their setting's current URL, so their origin is taken from it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:00:00

"""
from urllib.parse import urlsplit

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _origin(base_url):
    # A copy of webapp.meisai.client.origin_of as of this revision (migrations do not import app code).
    try:
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = parts.hostname or ""
    if not host or parts.scheme not in ("http", "https"):
        return None
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}:{port}"


def upgrade():
    with op.batch_alter_table('integration_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_origin', sa.String(length=300), nullable=True))
    connection = op.get_bind()
    settings = sa.table('integration_settings', sa.column('id', sa.Integer), sa.column('base_url', sa.String),
                        sa.column('token_origin', sa.String))
    for row in connection.execute(sa.select(settings.c.id, settings.c.base_url)).all():
        connection.execute(settings.update().where(settings.c.id == row.id).values(token_origin=_origin(row.base_url)))


def downgrade():
    with op.batch_alter_table('integration_settings', schema=None) as batch_op:
        batch_op.drop_column('token_origin')
