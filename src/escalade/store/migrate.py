"""Alembic, configured in code: no ``alembic.ini`` at run time.

The migration scripts live in ``escalade/store/migrations`` inside the package.
"""

from __future__ import annotations

from typing import Protocol

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, Engine
from sqlalchemy.exc import OperationalError

from escalade.store.interface import StoreError


class SqlStore(Protocol):
    """What migrating needs of a SQL store (``escalade.store.db.SqlStore``)."""

    @property
    def url(self) -> URL: ...
    @property
    def engine(self) -> Engine: ...
    def describe(self) -> str: ...


SCRIPT_LOCATION = "escalade.store:migrations"


def alembic_config(store: SqlStore) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    url = store.url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(store: SqlStore, revision: str = "head") -> None:
    cfg = alembic_config(store)
    try:
        with store.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise StoreError(f"cannot migrate {store.describe()}: {_first_line(exc)}") from exc


def downgrade(store: SqlStore, revision: str) -> None:
    cfg = alembic_config(store)
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def current_revision(store: SqlStore) -> str | None:
    try:
        with store.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise StoreError(f"cannot read {store.describe()}: {_first_line(exc)}") from exc


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return ScriptDirectory.from_config(cfg).get_current_head()


def _first_line(exc: OperationalError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
