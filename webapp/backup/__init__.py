"""Backups: one archive with the database and FILES_DIR (`flask backup create|restore`, see cli.py).

The encryption key of the stored API tokens (SECRET_KEY or TOKEN_ENCRYPTION_KEY) is never in an archive.
"""

from .operations import BackupError, create_backup, read_manifest, restore_backup

__all__ = ["BackupError", "create_backup", "read_manifest", "restore_backup"]
