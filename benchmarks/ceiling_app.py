"""The ceiling beside ``POST /v1/escalations`` in ``bench_storm``: FastAPI with one SQLite
insert per request, committed (WAL, ``synchronous=NORMAL``, as Escalade's SQLite store),
served by the same uvicorn settings. ``CEILING_DB`` names the database file.

    uvicorn benchmarks.ceiling_app:app --port 8001
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

DB = os.environ.get("CEILING_DB", "ceiling.db")
_local = threading.local()


def _conn() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tickets (id INTEGER PRIMARY KEY, subject TEXT, "
            "customer TEXT)"
        )
        _local.conn = conn
    return conn


class Ticket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str
    customer: dict[str, Any] = {}


app = FastAPI()


@app.post("/v1/escalations", status_code=201)
def create(ticket: Ticket) -> dict[str, Any]:
    conn = _conn()
    conn.execute("BEGIN IMMEDIATE")
    cur = conn.execute(
        "INSERT INTO tickets (subject, customer) VALUES (?, ?)",
        (ticket.subject, json.dumps(ticket.customer)),
    )
    conn.execute("COMMIT")
    return {"ref": f"T-{cur.lastrowid}", "subject": ticket.subject}
