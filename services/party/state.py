"""Where the party service keeps what, in its key/value state (the layout is in ``domain.py``).

One module spells every key so that the rules, the mutators and the queries (which the doc
service and the runtime call) can never disagree about a prefix. Values are canonical JSON
objects written with ``traco.core.domain.encode``; ``load`` reads one back.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from traco.core.domain import StateView

MEMBER = "member/"
MEMBER_KEYS = "member_keys/"
ROLE_KINDS = "role_kinds/"
RULES = "rules"
CHAIN_PARAMS = "chain_params"
PROPOSAL = "proposal/"
PROPOSAL_SEQ = "proposal_seq"
AGREEMENT = "agreement/"
VALIDATOR = "validator/"
VALIDATOR_CHANGE = "validator_change/"
DELEGATION = "delegation/"
NAMESPACE = "namespace/"
HISTORY = "history/"
NODE = "node/"
NODE_KEY = "node_key/"


def member(public_key: str) -> str:
    return f"{MEMBER}{public_key}"


def member_keys(member_id: str) -> str:
    return f"{MEMBER_KEYS}{member_id}"


def role_kinds(role: str) -> str:
    return f"{ROLE_KINDS}{role}"


def proposal(proposal_id: int) -> str:
    return f"{PROPOSAL}{proposal_id}"


def agreement(agreement_hash: str) -> str:
    return f"{AGREEMENT}{agreement_hash}"


def validator(public_key: str) -> str:
    return f"{VALIDATOR}{public_key}"


def validator_change(public_key: str, from_height: int) -> str:
    return f"{VALIDATOR_CHANGE}{public_key}/{from_height:012d}"


def namespace(name: str) -> str:
    """Namespaces compare without case (``nmfta:maeu`` is ``NMFTA:MAEU``), as the doc service's do."""
    return f"{NAMESPACE}{name.upper()}"


CODE_LIST_PREFIXES = ("NMFTA", "SMDG", "BIC")
"""Code-list providers that prefix a carrier or container-owner code (``NMFTA:MAEU``): under rules
version 2 a prefix names who publishes the code, not another namespace, so it is dropped."""


def canonical_namespace(name: str) -> str:
    """The one canonical form of a business-key namespace (rules version 2): upper case, every
    leading known code-list prefix dropped, so ``MAEU``, ``nmfta:maeu`` and ``SMDG:MAEU`` are all
    ``MAEU``. Other prefixes (``LEI:``, ``MEMBER:``) name other namespaces and stay. Party's
    namespace assignment and doc's business-key index both use this function (doc through
    ``queries``), so the two can never disagree about which spellings are one namespace."""
    canonical = name.upper()
    while True:
        head, colon, rest = canonical.partition(":")
        if not (colon and rest and head in CODE_LIST_PREFIXES):
            return canonical
        canonical = rest


def namespace_spellings(name: str) -> list[str]:
    """The upper-case spellings under which rules version 1 may have stored what version 2 calls
    ``canonical_namespace(name)``: the canonical form, then each ``<prefix>:<canonical>``. A chain
    upgraded to version 2 checks them all, so a namespace or business key claimed under an old
    spelling still counts (a v1 spelling with two prefixes, ``NMFTA:SMDG:MAEU``, is not searched)."""
    canonical = canonical_namespace(name)
    return [canonical, *(f"{prefix}:{canonical}" for prefix in CODE_LIST_PREFIXES)]


def principal_id(principal: str) -> str:
    """A principal's name as a key segment: names may hold ``/`` or any other character."""
    return hashlib.sha256(principal.encode("utf-8")).hexdigest()


def delegation(member_id: str, principal: str) -> str:
    return f"{DELEGATION}{member_id}/{principal_id(principal)}"


def history(member_id: str, height: int, index: int, event_type: str) -> str:
    """Zero-padded so that a prefix scan returns a member's history in chain order."""
    return f"{HISTORY}{member_id}/{height:012d}/{index:06d}/{event_type}"


def node(node_id: str) -> str:
    return f"{NODE}{node_id}"


def node_key(public_key: str) -> str:
    return f"{NODE_KEY}{public_key}"


def service_param(service: str, key: str) -> str:
    return f"service_param/{service}/{key}"


def upgrade(name: str) -> str:
    return f"upgrade/{name}"


def activation(service: str) -> str:
    """When a service not in the genesis starts executing (an upgrade's ``activate``)."""
    return f"activation/{service}"


def rule_version(service: str, from_height: int) -> str:
    return f"rule_version/{service}/{from_height:016d}"


def load(view: StateView, key: str) -> dict[str, Any] | None:
    """The JSON object stored under ``key``, or ``None``."""
    raw = view.get(key)
    if raw is None:
        return None
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"party state {key!r} does not hold a JSON object")
    return value
