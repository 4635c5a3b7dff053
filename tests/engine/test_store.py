"""The storage seam: Office speaks only to a Store; the database API stays behind it, on either backend."""

from __future__ import annotations

import inspect

import pytest

import engine.office
from engine.office import Office
from engine.store import Store, open_store


def test_office_never_touches_sqlite_itself():
    source = inspect.getsource(engine.office)
    assert "sqlite3" not in source and ".execute(" not in source
    for name, member in inspect.getmembers(Office, inspect.isfunction):
        assert "sqlite3" not in str(inspect.signature(member)), name


def test_the_store_has_every_method_of_the_protocol(store_url):
    store = open_store(store_url)
    wanted = {n for n, m in inspect.getmembers(Store, inspect.isfunction) if not n.startswith("_")}
    assert wanted <= {n for n in dir(store) if callable(getattr(store, n))}
    office = Office(store)
    assert office.store is store and office.integrity is store.integrity and office.audit is store.audit


def test_only_known_inspection_columns_reach_the_sql(store_url):
    store = open_store(store_url)
    with pytest.raises(ValueError, match="not an inspection column"):
        store.update_inspection("X1", **{"status = 'released' --": 1})
