"""Column types shared by the models of every module."""

from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on PostgreSQL (binary, faster to query); JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")
