"""The store refuses what it cannot safely use, with one clear line."""

from __future__ import annotations

import sqlite3

import pytest

from orchestra.store import SCHEMA_VERSION, Store, StoreError


def test_corrupt_file(tmp_path):
    p = tmp_path / "x.db"
    p.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a usable Orchestra store"):
        Store(p)


def test_foreign_sqlite_file(tmp_path):
    p = tmp_path / "foreign.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not an Orchestra store"):
        Store(p)


def test_newer_schema(tmp_path):
    p = tmp_path / "new.db"
    Store(p).db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    with pytest.raises(StoreError, match="newer"):
        Store(p)


def test_wal_and_round_trip(tmp_path):
    s = Store(tmp_path / "o.db")
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.save_run({"run_id": "r1", "status": "passed", "workflow": "w", "result": {"a": 1}}, spans=[{"span_id": "s1", "trace_id": "t", "parent_id": None, "run_id": "r1", "name": "x", "start_ns": 1, "end_ns": 2, "attributes": {"k": "v"}}])
    assert s.get_run("r1")["result"] == {"a": 1}
    assert s.spans_for_run("r1")[0]["attributes"] == {"k": "v"}


def test_lock_excludes_a_second_owner(tmp_path):
    import os

    s = Store(tmp_path / "o.db")
    me = f"{os.uname().nodename}:{os.getpid()}:a"
    other = f"{os.uname().nodename}:{os.getpid()}:b"
    assert s.try_lock("dream", me)
    assert not s.try_lock("dream", other)
    s.unlock("dream", me)
    assert s.try_lock("dream", other)
    dead = f"{os.uname().nodename}:999999:c"
    s.unlock("dream", other)
    assert s.try_lock("dream", dead)
    assert s.try_lock("dream", me)  # a dead owner's lock is stale
