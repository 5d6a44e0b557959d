"""Receipt codes of the party service.

Rejections are ledger values, not exceptions (architecture: Execution): every refused ``party.*`` transaction
ends in a receipt whose ``code`` is one of these and whose message says, for a person, why.
The codes are strings on the wire; ``reject`` turns an enum member into the ``Rejected`` value
the runtime expects (a plain ``str`` code, so receipts canonicalise without enum subclasses).
"""

from __future__ import annotations

from enum import StrEnum

from traco.core.domain import Rejected


class Code(StrEnum):
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    """The payload does not match the kind's schema (message: ``<field>: <reason>``)."""
    UNKNOWN_KIND = "UNKNOWN_KIND"
    """Not a party kind (the runtime only routes party kinds here, so this is a routing bug)."""
    NOT_A_MEMBER = "NOT_A_MEMBER"
    """The sender (or a listed party) is not an admitted member with a currently valid key."""
    NOT_PERMITTED = "NOT_PERMITTED"
    """The sender is a member but may not do this (roles, council snapshot, self-attestation...)."""
    ALREADY_REGISTERED = "ALREADY_REGISTERED"
    """The member id or one of the public keys is already known to the chain."""
    BAD_KEY_PROOF = "BAD_KEY_PROOF"
    """A proof of possession of a new key does not verify."""
    MISSING_SIGNATURE = "MISSING_SIGNATURE"
    """A party to an agreement has not signed it."""
    BAD_SIGNATURE = "BAD_SIGNATURE"
    """A party's signature over an agreement does not verify."""
    UNKNOWN_MEMBER = "UNKNOWN_MEMBER"
    """No member with that id (or no member holds that key)."""
    UNKNOWN_ROLE = "UNKNOWN_ROLE"
    """The role has no entry in the role table."""
    UNKNOWN_VALIDATOR = "UNKNOWN_VALIDATOR"
    """The key is not in the (scheduled) validator set."""
    UNKNOWN_PROPOSAL = "UNKNOWN_PROPOSAL"
    UNKNOWN_DELEGATION = "UNKNOWN_DELEGATION"
    """A revocation names a delegation that does not exist."""
    UNKNOWN_NODE = "UNKNOWN_NODE"
    """No node is registered under that id."""
    ALREADY_VOTED = "ALREADY_VOTED"
    PROPOSAL_CLOSED = "PROPOSAL_CLOSED"
    """The proposal has already passed, failed or been voided."""
    PROPOSAL_EXPIRED = "PROPOSAL_EXPIRED"
    """The block time is past the proposal's deadline."""
    NO_COUNCIL = "NO_COUNCIL"
    """There is no admitted council member, so nobody could vote on a proposal."""
    INVALID_ACTION = "INVALID_ACTION"
    """A governance action does not apply to the current state (admit an admitted member...)."""
    DUPLICATE_AGREEMENT = "DUPLICATE_AGREEMENT"


def reject(code: Code, message: str) -> Rejected:
    """The rejection receipt value for ``code`` with a human-readable ``message``."""
    return Rejected(code.value, message)
