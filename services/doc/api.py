"""The doc service's HTTP API: documents, their history, and "verify this file".

``POST /documents/verify`` takes the file's bytes (the API hashes them and forgets them; the
chain only ever sees the SHA-256) and answers: registered or not, issuer, holder, pledge, the
version chain and the full history with block heights and transaction ids, for which the
consensus API serves inclusion proofs (``GET /proofs/{tx_id}``; ``traco doc verify`` fetches
and checks them). Transactions are submitted signed to the consensus API (``POST /tx``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from traco.core.service_runtime import ServiceRuntime
from traco.services.doc import queries

MAX_UPLOAD_BYTES = 64 * 1024 * 1024


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, {"code": "NOT_FOUND", "message": f"no {what}"})


def router(runtime: ServiceRuntime) -> APIRouter:
    api = APIRouter()
    view = runtime.store

    def report(file_hash: str) -> dict[str, Any] | None:
        found = queries.by_hash(view, file_hash, runtime.block_time)
        if found is None:
            return None
        history = queries.history(view, found["doc_id"])
        return {"registered": True, **found, "history": history, "as_of_height": runtime.height}

    @api.get("/documents/{doc_id}")
    async def document(doc_id: str) -> dict[str, Any]:
        """A document version with its newest version, history and endorsement chain."""
        record = queries.document(view, doc_id)
        if record is None:
            raise _not_found(f"document {doc_id[:16]}…")
        return {
            "document": record,
            "current": queries.current(view, doc_id),
            "pledge_in_force": queries.active_pledge(view, doc_id, runtime.block_time),
            "history": queries.history(view, doc_id),
            "endorsements": queries.endorsements(view, doc_id),
            "as_of_height": runtime.height,
        }

    @api.get("/documents/by-hash/{file_hash}")
    async def by_hash(file_hash: str) -> dict[str, Any]:
        """What the chain knows about the file with this SHA-256."""
        found = report(file_hash.lower())
        if found is None:
            raise _not_found(f"registered document with SHA-256 {file_hash[:16]}…")
        return found

    @api.post("/documents/verify")
    async def verify(request: Request) -> dict[str, Any]:
        """Upload a file (raw body): is it registered, by whom, who holds it, is it pledged."""
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise HTTPException(413, {"code": "TOO_LARGE", "message": f"files over {MAX_UPLOAD_BYTES} bytes"})
            digest.update(chunk)
        file_hash = digest.hexdigest()
        found = report(file_hash)
        return found if found is not None else {"file_hash": file_hash, "registered": False}

    return api
