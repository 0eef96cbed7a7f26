"""The SQLite store: runs, spans, verdicts, playbooks, lessons, injections, dreams.

One file, WAL mode, one lock per process; every write is a single transaction
so a crash never leaves half a run or half a playbook.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from .redact import redact

SCHEMA_VERSION = 1
DEFAULT_DB = ".orchestra/orchestra.db"


class StoreError(Exception):
    """A store that cannot be used (corrupt, foreign, newer schema); one line for the CLI."""


def default_db_path() -> Path:
    return Path(os.environ.get("ORCHESTRA_DB") or DEFAULT_DB)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, trace_id TEXT, workflow TEXT, seed INTEGER, status TEXT,
  error TEXT, model TEXT, started REAL, ended REAL, campaign_id TEXT, phase TEXT,
  passed INTEGER, score REAL, cause TEXT, input_tokens INTEGER, output_tokens INTEGER,
  cache_read_tokens INTEGER, cache_write_tokens INTEGER, dreamed INTEGER DEFAULT 0,
  result TEXT
);
CREATE INDEX IF NOT EXISTS runs_dreamed ON runs(workflow, dreamed);
CREATE INDEX IF NOT EXISTS runs_campaign ON runs(campaign_id, phase);
CREATE TABLE IF NOT EXISTS spans (
  span_id TEXT PRIMARY KEY, trace_id TEXT, parent_id TEXT, run_id TEXT, name TEXT,
  start_ns INTEGER, end_ns INTEGER, status TEXT, attributes TEXT
);
CREATE INDEX IF NOT EXISTS spans_run ON spans(run_id);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
CREATE TABLE IF NOT EXISTS verdicts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, stage TEXT, attempt INTEGER,
  rubric_id TEXT, rubric_version TEXT, score REAL, passed INTEGER, unscored INTEGER,
  verdict TEXT, created REAL
);
CREATE INDEX IF NOT EXISTS verdicts_run ON verdicts(run_id);
CREATE TABLE IF NOT EXISTS playbooks (
  specialist TEXT, version INTEGER, parent_version INTEGER, status TEXT, dream_id TEXT,
  gate TEXT, lessons TEXT, created REAL, PRIMARY KEY (specialist, version)
);
CREATE TABLE IF NOT EXISTS heads (specialist TEXT PRIMARY KEY, version INTEGER, updated REAL);
CREATE TABLE IF NOT EXISTS lessons (
  id TEXT PRIMARY KEY, specialist TEXT, text TEXT, rule TEXT, dream_id TEXT, evidence TEXT,
  support INTEGER, precision REAL, lift REAL, p_value REAL, helpful INTEGER, harmful INTEGER,
  created REAL
);
CREATE TABLE IF NOT EXISTS injections (
  run_id TEXT, specialist TEXT, playbook_version INTEGER, lesson_ids TEXT,
  PRIMARY KEY (run_id, specialist)
);
CREATE TABLE IF NOT EXISTS dreams (
  dream_id TEXT PRIMARY KEY, workflow TEXT, status TEXT, started REAL, ended REAL,
  runs TEXT, result TEXT
);
CREATE TABLE IF NOT EXISTS dream_state (workflow TEXT PRIMARY KEY, stats BLOB, updated REAL);
CREATE TABLE IF NOT EXISTS campaigns (
  campaign_id TEXT PRIMARY KEY, params TEXT, status TEXT, state TEXT, started REAL, updated REAL
);
CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT, acquired REAL);
"""


class Store:
    """Thread-safe access to one store file; processes coordinate through SQLite locking."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        self._lock = threading.RLock()
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory, not a store file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self._init_schema()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable Orchestra store ({e})") from None

    def _init_schema(self) -> None:
        existing = set(self.db.table_names())
        if existing and "meta" not in existing:
            raise StoreError(f"{self.path}: a SQLite file that is not an Orchestra store (tables: {', '.join(sorted(existing)[:5])})")
        if "meta" in existing:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: store schema version {version} is newer than this Orchestra ({SCHEMA_VERSION}); upgrade orchestra")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.conn.executescript(_SCHEMA)
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    # --- runs -------------------------------------------------------------
    def save_run(self, run: dict[str, Any], spans: list[dict[str, Any]] = (), verdicts: list[dict[str, Any]] = (), injections: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
        """Write a run with all its spans, verdicts and injections atomically."""
        run = redact(dict(run))  # results, tool logs and errors can carry secrets; spans are redacted already
        if isinstance(run.get("result"), (dict, list)):
            run["result"] = json.dumps(run["result"], default=str)
        with self.transaction() as db:
            db["runs"].upsert(run, pk="run_id", alter=False)
            if spans:
                db["spans"].upsert_all([_span_row(s) for s in spans], pk="span_id", batch_size=500)
            for v in verdicts:
                db["verdicts"].insert(_verdict_row(run["run_id"], v))
            for inj in injections:
                db["injections"].upsert(
                    {"run_id": run["run_id"], "specialist": inj["specialist"], "playbook_version": inj["playbook_version"], "lesson_ids": json.dumps(inj["lesson_ids"])},
                    pk=("run_id", "specialist"),
                )

    def save_spans(self, spans: list[dict[str, Any]]) -> None:
        if spans:
            with self.transaction() as db:
                db["spans"].upsert_all([_span_row(s) for s in spans], pk="span_id", batch_size=500)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM runs WHERE run_id = ?", [run_id]))
        if not rows:
            rows = list(self.db.query("SELECT * FROM runs WHERE run_id LIKE ? ORDER BY started DESC LIMIT 2", [run_id + "%"]))
            if len(rows) != 1:
                return None
        return _decode_run(rows[0])

    def list_runs(self, *, workflow: str | None = None, limit: int = 50, campaign_id: str | None = None, phase: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        if workflow:
            where.append("workflow = ?")
            params.append(workflow)
        if campaign_id:
            where.append("campaign_id = ?")
            params.append(campaign_id)
        if phase:
            where.append("phase = ?")
            params.append(phase)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY started DESC LIMIT ?"
        return [_decode_run(r) for r in self.db.query(sql, [*params, limit])]

    def spans_for_run(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM spans WHERE run_id = ? ORDER BY start_ns, span_id", [run_id])
        return [_decode_span(r) for r in rows]

    def verdicts_for_run(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM verdicts WHERE run_id = ? ORDER BY id", [run_id])
        return [json.loads(r["verdict"]) for r in rows]

    def injections_for_run(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = self.db.query("SELECT * FROM injections WHERE run_id = ?", [run_id])
        return {r["specialist"]: {"playbook_version": r["playbook_version"], "lesson_ids": json.loads(r["lesson_ids"])} for r in rows}

    def save_verdict(self, run_id: str, verdict: dict[str, Any]) -> None:
        with self.transaction() as db:
            db["verdicts"].insert(_verdict_row(run_id, verdict))

    # --- locks ------------------------------------------------------------
    def try_lock(self, name: str, owner: str, stale_s: float = 3600.0) -> bool:
        """An advisory lock row; stale locks (crashed owners) expire."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT owner, acquired FROM locks WHERE name = ?", [name]).fetchone()
            if row and row[0] != owner and now - row[1] < stale_s and _owner_alive(row[0]):
                return False
            db.execute("INSERT OR REPLACE INTO locks(name, owner, acquired) VALUES (?, ?, ?)", [name, owner, now])
            return True

    def unlock(self, name: str, owner: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", [name, owner])


def _owner_alive(owner: str) -> bool:
    """Owners are 'host:pid:token'; a dead pid on this host means a stale lock."""
    try:
        host, pid, _ = owner.split(":", 2)
    except ValueError:
        return True
    if host != os.uname().nodename:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _span_row(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "span_id": s["span_id"], "trace_id": s["trace_id"], "parent_id": s.get("parent_id"),
        "run_id": s.get("run_id"), "name": s["name"], "start_ns": s["start_ns"], "end_ns": s["end_ns"],
        "status": s.get("status", "UNSET"), "attributes": json.dumps(s.get("attributes", {}), default=str),
    }


def _decode_span(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    r["attributes"] = json.loads(r["attributes"] or "{}")
    return r


def _decode_run(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    if r.get("result"):
        try:
            r["result"] = json.loads(r["result"])
        except ValueError:
            pass
    return r


def _verdict_row(run_id: str, v: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id, "stage": v.get("stage", ""), "attempt": v.get("attempt", 1),
        "rubric_id": v.get("rubric_id"), "rubric_version": str(v.get("rubric_version")),
        "score": v.get("score"), "passed": int(bool(v.get("passed"))), "unscored": v.get("unscored", 0),
        "verdict": json.dumps(redact(v), default=str), "created": time.time(),
    }
