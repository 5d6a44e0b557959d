"""The party service's HTTP API: members, roles, rules, council, proposals with tallies,
agreements and validators, read from the service's own state as of its last executed block.

Transactions (register, vote, …) are submitted signed to the consensus API (``POST /tx``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from traco.core.service_runtime import ServiceRuntime
from traco.services.party import queries


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, {"code": "NOT_FOUND", "message": f"no {what}"})


def router(runtime: ServiceRuntime) -> APIRouter:
    api = APIRouter()
    view = runtime.store

    @api.get("/members")
    async def members() -> list[dict[str, Any]]:
        """Every member record (applied, admitted and suspended)."""
        return queries.members(view)

    @api.get("/members/{member_id}")
    async def member(member_id: str) -> dict[str, Any]:
        """A member with its keys, history, agreements and delegations."""
        record = queries.member_by_id(view, member_id)
        if record is None:
            raise _not_found(f"member {member_id!r}")
        return {
            **record,
            "keys": queries.member_keys(view, member_id),
            "history": queries.history(view, member_id),
            "agreements": queries.agreements_of(view, member_id),
            "delegations": queries.delegations(view, member_id),
        }

    @api.get("/keys/{public_key}")
    async def key(public_key: str) -> dict[str, Any]:
        """The member a key belongs to, if the key is valid now."""
        record = queries.member(view, public_key, runtime.block_time)
        if record is None:
            raise _not_found(f"valid member key {public_key[:16]}…")
        return {**record, "roles_now": sorted(queries.roles_of(view, public_key, runtime.block_time))}

    @api.get("/roles")
    async def roles() -> dict[str, list[str]]:
        """Which transaction kinds each role may submit."""
        return queries.role_kinds(view)

    @api.get("/rules")
    async def rules() -> dict[str, int]:
        """The voting rules in force."""
        return queries.rules(view)

    @api.get("/council")
    async def council() -> list[str]:
        """Member ids of the council."""
        return queries.council(view, runtime.block_time)

    @api.get("/proposals")
    async def proposals(status: str | None = None) -> list[dict[str, Any]]:
        """Proposals with their tallies, optionally by status (open, passed, rejected, expired, void)."""
        return queries.proposals(view, runtime.block_time, status)

    @api.get("/proposals/{proposal_id}")
    async def proposal(proposal_id: int) -> dict[str, Any]:
        """One proposal and its tally."""
        record = queries.proposal(view, proposal_id, runtime.block_time)
        if record is None:
            raise _not_found(f"proposal {proposal_id}")
        return record

    @api.get("/agreements/{agreement_hash}")
    async def agreement(agreement_hash: str) -> dict[str, Any]:
        """A recorded agreement."""
        record = queries.agreement(view, agreement_hash)
        if record is None:
            raise _not_found(f"agreement {agreement_hash[:16]}…")
        return record

    @api.get("/namespaces/{namespace}")
    async def namespace(namespace: str) -> dict[str, Any]:
        """Which member a business-key namespace is assigned to (null: open to any issuer)."""
        return {"namespace": namespace.upper(), "member_id": queries.namespace_owner(view, namespace)}

    @api.get("/nodes")
    async def nodes() -> list[dict[str, Any]]:
        """The registered nodes: member, and every key with the height it counts from."""
        return queries.nodes(view)

    @api.get("/nodes/{node_id}")
    async def node(node_id: str, height: int | None = None) -> dict[str, Any]:
        """A node, and the key it signs with at ``height`` (default: the next height)."""
        record = queries.node(view, node_id)
        if record is None:
            raise _not_found(f"node {node_id!r}")
        at = height if height is not None else runtime.height + 1
        return {**record, "height": at, "key": queries.node_key_at(view, node_id, at)}

    @api.get("/validators")
    async def validators(height: int | None = None) -> list[dict[str, Any]]:
        """The validator set in effect at a height (default: the next one)."""
        at = height if height is not None else runtime.height + 1
        return [{"public_key": k, "power": p} for k, p in queries.validator_set(view, at)]

    return api
