"""Playbook versions in the store: active heads, candidates, promotion, rollback, diff."""

from __future__ import annotations

import json
import time
from typing import Any

from .playbook import Lesson, Playbook, empty_playbook
from .store import Store


class VersionError(Exception):
    """Unknown specialist or version; one line for the CLI."""


def _row_to_playbook(row: dict[str, Any]) -> Playbook:
    lessons = [Lesson.model_validate(x) for x in json.loads(row["lessons"] or "[]")]
    return Playbook(specialist=row["specialist"], version=row["version"], lessons=lessons)


def active_version(store: Store, specialist: str) -> int:
    row = store.db.execute("SELECT version FROM heads WHERE specialist = ?", [specialist]).fetchone()
    return int(row[0]) if row else 0


def get_playbook(store: Store, specialist: str, version: int | None = None) -> Playbook:
    """A stored version (the active one by default); v0 is the empty playbook."""
    v = active_version(store, specialist) if version is None else version
    if v == 0:
        return empty_playbook(specialist)
    rows = list(store.db.query("SELECT * FROM playbooks WHERE specialist = ? AND version = ?", [specialist, v]))
    if not rows:
        raise VersionError(f"no playbook version {v} for specialist {specialist!r}")
    return _row_to_playbook(rows[0])


def active_playbooks(store: Store, specialists: list[str]) -> dict[str, Playbook]:
    return {s: get_playbook(store, s) for s in specialists}


def playbook_record(store: Store, specialist: str, version: int) -> dict[str, Any]:
    rows = list(store.db.query("SELECT * FROM playbooks WHERE specialist = ? AND version = ?", [specialist, version]))
    if not rows:
        raise VersionError(f"no playbook version {version} for specialist {specialist!r}")
    r = dict(rows[0])
    r["lessons"] = json.loads(r["lessons"] or "[]")
    r["gate"] = json.loads(r["gate"] or "null")
    return r


def history(store: Store, specialist: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT specialist, version, parent_version, status, dream_id, gate, lessons, created FROM playbooks WHERE specialist = ? ORDER BY version", [specialist])
    head = active_version(store, specialist)
    out = [{"specialist": specialist, "version": 0, "parent_version": None, "status": "base", "dream_id": None, "lessons": 0, "active": head == 0}]
    for r in rows:
        out.append({"specialist": specialist, "version": r["version"], "parent_version": r["parent_version"], "status": r["status"], "dream_id": r["dream_id"], "gate": json.loads(r["gate"] or "null"), "lessons": len(json.loads(r["lessons"] or "[]")), "created": r["created"], "active": head == r["version"]})
    return out


def save_version(store: Store, playbook: Playbook, *, parent: int, status: str, dream_id: str, gate: dict[str, Any] | None, activate: bool) -> int:
    """Write a new version (and optionally make it active) in one transaction; versions stay linear."""
    with store.transaction() as db:
        return insert_version(db, playbook, parent=parent, status=status, dream_id=dream_id, gate=gate, activate=activate)


def insert_version(db: Any, playbook: Playbook, *, parent: int, status: str, dream_id: str, gate: dict[str, Any] | None, activate: bool) -> int:
    """The same, inside a caller's open transaction (a dream promotes a whole team atomically)."""
    row = db.execute("SELECT COALESCE(MAX(version), 0) FROM playbooks WHERE specialist = ?", [playbook.specialist]).fetchone()
    version = int(row[0]) + 1
    lessons = [lesson.model_dump(mode="json") for lesson in playbook.lessons]
    db["playbooks"].insert({"specialist": playbook.specialist, "version": version, "parent_version": parent, "status": status, "dream_id": dream_id, "gate": json.dumps(gate, default=str), "lessons": json.dumps(lessons), "created": time.time()})
    for lesson in playbook.lessons:
        db["lessons"].upsert({"id": lesson.id, "specialist": lesson.specialist, "text": lesson.text, "rule": json.dumps(lesson.rule.model_dump(mode="json") if lesson.rule else None), "dream_id": lesson.dream_id, "evidence": json.dumps(lesson.evidence), "support": lesson.support, "precision": lesson.precision, "lift": lesson.lift, "p_value": lesson.p_value, "helpful": lesson.helpful, "harmful": lesson.harmful, "created": time.time()}, pk="id")
    if activate:
        db.execute("INSERT OR REPLACE INTO heads(specialist, version, updated) VALUES (?, ?, ?)", [playbook.specialist, version, time.time()])
    return version


def activate(store: Store, specialist: str, version: int, status: str | None = None) -> None:
    """Point the head at an existing version (rollback / approve), atomically."""
    if version != 0:
        playbook_record(store, specialist, version)
    with store.transaction() as db:
        db.execute("INSERT OR REPLACE INTO heads(specialist, version, updated) VALUES (?, ?, ?)", [specialist, version, time.time()])
        if status:
            db.execute("UPDATE playbooks SET status = ? WHERE specialist = ? AND version = ?", [status, specialist, version])


def diff(a: Playbook, b: Playbook) -> dict[str, list[dict[str, Any]]]:
    ida, idb = {x.id: x for x in a.lessons}, {x.id: x for x in b.lessons}
    return {
        "added": [idb[i].model_dump(mode="json") for i in idb if i not in ida],
        "removed": [ida[i].model_dump(mode="json") for i in ida if i not in idb],
        "changed": [{"id": i, "from": ida[i].text, "to": idb[i].text} for i in ida if i in idb and ida[i].text != idb[i].text],
    }
