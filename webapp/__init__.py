"""Application factory."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from .config import apply_database_settings, apply_environment_settings, load_config
from .extensions import csrf, db, limiter, login_manager, migrate

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(config: dict | None = None, instance_path: str | None = None) -> Flask:
    """Create the Flask app. `config` overrides values read from the environment (tests use it)."""
    from .core.file_modes import make_files_private, tighten_existing

    make_files_private()  # before anything is written, the instance folder and secret key included
    kwargs = {"instance_path": instance_path} if instance_path else {"instance_relative_config": True}
    app = Flask(__name__, **kwargs)
    app.config.update(load_config(Path(app.instance_path)))
    if config:
        app.config.update(config)
    apply_environment_settings(app.config)  # refuses a placeholder SECRET_KEY in production
    apply_database_settings(app.config)
    tighten_existing(app.config, Path(app.instance_path))

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)

    from .auth.sessions import init_sessions

    init_sessions(app)

    from . import models  # noqa: F401  (register every model on the metadata)
    from .auth import bp as auth_bp
    from .auth.cli import register_cli as register_auth_cli
    from .backup.cli import register_cli as register_backup_cli
    from .core import register_core
    from .core.params import register_parameter_rules
    from .core.security import register_security
    from .databases import bp as databases_bp
    from .databases.cli import register_cli as register_databases_cli
    from .demo import register_cli as register_demo_cli
    from .documents.routes import bp as documents_bp
    from .health import bp as health_bp
    from .integrations import bp as integrations_bp
    from .runs import bp as runs_bp
    from .runs.cli import register_cli as register_runs_cli
    from .timers import bp as timers_bp
    from .timers.cli import register_cli as register_timers_cli

    register_core(app)
    register_security(app)
    register_parameter_rules(app)  # before the blueprints: their rules use its `int` converter
    app.register_blueprint(auth_bp)
    app.register_blueprint(databases_bp)
    app.register_blueprint(documents_bp)
    app.register_blueprint(integrations_bp)
    app.register_blueprint(runs_bp)
    app.register_blueprint(timers_bp)
    app.register_blueprint(health_bp)
    register_runs_cli(app)
    register_timers_cli(app)
    register_auth_cli(app)
    register_demo_cli(app)
    register_backup_cli(app)
    register_databases_cli(app)
    return app
