"""The party state at height 0: founding members, the role table, voting rules, validators.

Why events: genesis is expressed as the same events that transactions emit
(``RulesSet``, ``RoleKindsSet``, ``ValidatorAdded``, ``MemberRegistered`` + ``MemberAdmitted``),
so there is one ``mutate`` path and an auditor replays genesis exactly like any block. Apply
``genesis_events(pg)`` in order with ``PARTY.mutate`` to an empty state, as ``genesis_state``
does, and the result is the state before block 1. Genesis events carry ``height`` 0, ``index``
= their position in the list and ``time`` = ``genesis_time``.

Founding members need no sponsor and no proof of possession: the consortium writes their keys
into genesis by hand (or ``development_genesis`` from freshly generated key files).
Genesis validators are in effect from height 0; the consensus genesis names them too, and the
runtime must keep the two lists equal (see the report to the integrator).

``development_genesis`` builds the README's cast (``exporter``, ``importer``, ``carrier``,
``bank-a``, ``bank-b``, ``custodian``, ``kyc``, ``council-1``..``council-3``) and a default role
table; it is data, and every entry can be changed later by a council vote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from traco.core.domain import DictState, Event
from traco.schemas.genesis import Genesis, validator_set
from traco.services.party.events import At, event, mutate
from traco.services.party.models import (
    DEFAULT_RULES,
    MAX_POWER,
    Jurisdiction,
    Kinds,
    MemberId,
    Millis,
    Namespace,
    PublicKey,
    RoleName,
    Roles,
    Rules,
    Text,
)
from traco.services.party.state import canonical_namespace

__all__ = [
    "DEFAULT_ROLE_KINDS",
    "DEVELOPMENT_CAST",
    "GenesisKyc",
    "GenesisMember",
    "GenesisValidator",
    "PartyGenesis",
    "development_genesis",
    "genesis_events",
    "genesis_state",
]


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GenesisKyc(_Config):
    """A ``verified`` KYC attestation written into genesis: by ``provider`` (a KYC provider's
    key), until ``expires_at``."""

    provider: PublicKey
    expires_at: Millis
    qualified_investor: bool = False
    """The member is a qualified (professional) investor: what equity-anchored tokens require."""


class GenesisMember(_Config):
    name: MemberId
    """Becomes the member id."""
    organisation: Text
    jurisdiction: Jurisdiction
    public_key: PublicKey
    roles: Roles
    namespaces: tuple[Namespace, ...] = ()
    """Business-key namespaces assigned to the member from the start (see ``assign_namespace``)."""
    kyc: GenesisKyc | None = None
    """A founding member's KYC, attested before the chain starts, so that a chain whose rules
    enforce KYC can transact from its first block."""


class GenesisValidator(_Config):
    public_key: PublicKey
    power: int = Field(ge=1, le=MAX_POWER)


class PartyGenesis(_Config):
    genesis_time: Millis = 0
    members: tuple[GenesisMember, ...] = ()
    role_kinds: dict[RoleName, Kinds] = Field(default_factory=dict)
    rules: Rules = DEFAULT_RULES
    validators: tuple[GenesisValidator, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique("member name", [m.name for m in self.members])
        _unique("member public key", [m.public_key for m in self.members])
        _unique("validator public key", [v.public_key for v in self.validators])
        _unique("namespace", [n.upper() for m in self.members for n in m.namespaces])
        for m in self.members:
            unknown = sorted(set(m.roles) - set(self.role_kinds))
            if unknown:
                raise ValueError(f"member {m.name!r} has roles missing from role_kinds: {unknown}")
        return self


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice")
        seen.add(value)


def genesis_events(pg: PartyGenesis, rules: int = 1) -> list[Event]:
    """The events that, applied in order to an empty state, give the party state at height 0,
    under version ``rules`` of party's rules (the genesis's ``params.rules``): from version 2 a
    namespace is assigned under its canonical form (``state.canonical_namespace``), once per
    member, and two members may not hold one namespace under two spellings."""
    events: list[Event] = []
    owners: dict[str, str] = {}

    def add(event_type: str, aggregate_id: str, **data: object) -> None:
        events.append(event(At(0, len(events), pg.genesis_time), event_type, aggregate_id, **data))

    add("RulesSet", "rules", rules=pg.rules.model_dump())
    for role in sorted(pg.role_kinds):
        add("RoleKindsSet", f"role:{role}", role=role, kinds=list(pg.role_kinds[role]))
    for v in pg.validators:
        add("ValidatorAdded", f"validator:{v.public_key}", public_key=v.public_key, power=v.power, from_height=0)
    for m in pg.members:
        add(
            "MemberRegistered",
            f"member:{m.name}",
            member_id=m.name,
            name=m.name,
            organisation=m.organisation,
            jurisdiction=m.jurisdiction,
            roles=list(m.roles),
            keys=[m.public_key],
            primary_key=m.public_key,
            sponsor=None,
            sponsor_key=None,
        )
        add("MemberAdmitted", f"member:{m.name}", member_id=m.name, roles=list(m.roles))
        if m.kyc is not None:
            add(
                "KycRecorded",
                f"member:{m.name}",
                member_id=m.name,
                status="verified",
                provider=m.kyc.provider,
                expires_at=m.kyc.expires_at,
                **({"qualified_investor": True} if m.kyc.qualified_investor else {}),
            )
        for namespace in m.namespaces:
            if rules < 2:
                name = namespace.upper()
                add("NamespaceAssigned", f"namespace:{name}", namespace=name, member_id=m.name)
                continue
            name = canonical_namespace(namespace)
            if owners.setdefault(name, m.name) != m.name:
                raise ValueError(f"namespace {namespace!r} is {owners[name]!r}'s as {name!r}; one namespace, one owner")
            if not any(e.type == "NamespaceAssigned" and e.data["namespace"] == name for e in events):
                add("NamespaceAssigned", f"namespace:{name}", namespace=name, member_id=m.name)
    return events


def node_events(nodes: Sequence[Any], first_index: int, genesis_time: int) -> list[Event]:
    """The genesis file's registered nodes (each bound to a member), as party events of height 0."""
    return [
        event(
            At(0, first_index + i, genesis_time),
            "NodeRegistered",
            f"node:{n.id}",
            node_id=n.id,
            member_id=n.member,
            public_key=n.public_key,
            from_height=0,
        )
        for i, n in enumerate(nodes)
    ]


def genesis_state(pg: PartyGenesis, rules: int = 1) -> DictState:
    """A fresh in-memory state with ``genesis_events(pg, rules)`` applied (what the runtime stores)."""
    state = DictState()
    for ev in genesis_events(pg, rules):
        state.apply(mutate(state, ev))
    return state


# --------------------------------------------------------------------------- development genesis

_EVERY_MEMBER = (
    "party.register",
    "party.delegate",
    "party.agreement",
    "party.key.rotate",
    "party.node.register",
    "party.node.rotate",
)
_HOLDER = (
    "doc.transfer",
    "doc.surrender",
    "doc.pledge",
    "doc.share_key",
    "doc.hold",
    "doc.hold.execute",
    "doc.hold.release",
    "doc.hold.renew",
)
"""What a holder of a document may do with it; the doc service checks who holds it."""
_ISSUER = ("doc.register", "doc.event", "doc.amend")
"""Issuing and reporting; the doc service checks which role may issue which type or milestone."""
_FINANCIER = ("doc.event", "doc.release", "doc.pledge.accept", "doc.pledge.extend", *_HOLDER)
"""A bank or factor takes pledges (accepts, extends, releases them) and holds titles itself."""

_TOKEN_HOLDER = (
    "trade.transfer",
    "trade.hold.create",
    "trade.hold.execute",
    "trade.hold.release",
    "trade.hold.renew",
    "trade.trc.redeem",
)
"""What any member that holds tokens does with them: pay, hold for a counterparty (and decide
holds made for it), redeem TRC for fiat."""
_INVESTOR = (*_TOKEN_HOLDER, "trade.equity.exercise", "trade.title.execute")
"""Traders and financiers also exercise equity-anchored tokens (trade checks the qualified-
investor attribute) and settle a held document title against payment (``trade.title.execute``
asks doc to execute a title hold the sender decides)."""
_TRADER = (
    "trade.escrow.open",
    "trade.escrow.confirm",
    "trade.escrow.cancel",
    "trade.escrow.dispute",
    "trade.dvp.open",
    "trade.dvp.fund",
    "trade.dvp.allocate",
    "trade.dvp.settle",
    "trade.finance.request",
    "trade.finance.cancel",
    "trade.finance.accept",
    "trade.loan.repay",
    "trade.order.place",
    "trade.order.cancel",
)
"""Trade rules version 2's flows for anyone who buys, sells or borrows: escrowed payment,
delivery against payment, financing a document it holds, the exchange."""
_LENDER = ("trade.finance.offer", "trade.finance.withdraw", "trade.abs.pool", "trade.abs.collect")
"""Financiers offer loans and arrange securitisations (trade checks the arranger's assets)."""
_ARBITER = ("trade.escrow.resolve",)
"""Deciding a disputed escrow; trade accepts it only from the member the council named arbiter."""
_CUSTODIAN = (
    "trade.transfer",
    "trade.trc.attest",
    "trade.trc.mint",
    "trade.trc.redeemed",
    "trade.equity.define",
    "trade.equity.issue",
    "trade.equity.settled",
    "trade.equity.statement",
)
"""A custodian attests reserves and mints TRC, confirms redemptions it paid, defines and issues
equity-anchored tokens against custodied shares, and settles exercises when it is the named
settlement agent; it moves the Coco fees it earns (``trade.transfer``)."""
_COMPLIANCE = ("trade.trc.freeze", "trade.trc.unfreeze")
"""Freezing TRC accounts: trade's governed compliance role (``regulator`` by default)."""

DEFAULT_ROLE_KINDS: Mapping[str, tuple[str, ...]] = {
    "exporter": (*_ISSUER, *_HOLDER, *_INVESTOR, *_TRADER),
    "importer": (*_ISSUER, *_HOLDER, *_INVESTOR, *_TRADER),
    "carrier": (*_ISSUER, "doc.transfer", "doc.surrender", "doc.share_key"),
    "warehouse": (*_ISSUER, *_HOLDER),
    "bank": (*_FINANCIER, *_INVESTOR, *_TRADER, *_LENDER, *_ARBITER, "trade.equity.settled"),
    "insurer": (*_ISSUER, "doc.share_key", *_TOKEN_HOLDER),
    "factor": (*_FINANCIER, *_INVESTOR, *_TRADER, *_LENDER),
    "custodian": ("doc.share_key", *_CUSTODIAN),
    "regulator": (*_ISSUER, "doc.share_key", *_COMPLIANCE, *_ARBITER),
    "kyc_provider": ("party.kyc",),
    "council": ("party.propose", "party.vote"),
}
"""Role -> kinds for development; every role also gets ``party.register``, ``party.delegate``,
``party.agreement``, ``party.key.rotate`` and the node kinds. Each trade kind is listed for the
roles that need it (no ``trade.*``): trade's rules still decide who among them may (the named
custodian, the settlement agent, the hold's decider). A settlement agent is whichever member the
equity terms name: custodians and banks may settle."""

DEVELOPMENT_CAST: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("exporter", "Harbour Exports Ltd", "SG", ("exporter",)),
    ("importer", "Rhine Imports GmbH", "DE", ("importer",)),
    ("carrier", "Blue Water Lines", "DK", ("carrier",)),
    ("bank-a", "Bank A plc", "GB", ("bank",)),
    ("bank-b", "Banque B SA", "FR", ("bank",)),
    ("custodian", "Alpine Custody AG", "CH", ("custodian",)),
    ("custodian-2", "Harbour Trust Custody Ltd", "SG", ("custodian",)),
    ("custodian-3", "Lakeside Depositary SA", "LU", ("custodian",)),
    ("kyc", "Trusted KYC BV", "NL", ("kyc_provider",)),
    ("council-1", "Consortium Council Seat 1", "SG", ("council",)),
    ("council-2", "Consortium Council Seat 2", "GB", ("council",)),
    ("council-3", "Consortium Council Seat 3", "DE", ("council",)),
)
"""``(name, organisation, jurisdiction, roles)`` of the README's development members."""

DEVELOPMENT_QUALIFIED_INVESTORS = ("bank-a", "bank-b")
"""Members of the development cast whose KYC says they are qualified investors."""

DEVELOPMENT_KYC_UNTIL = 4_102_444_800_000
"""2100-01-01T00:00:00Z: the development cast's KYC (by the ``kyc`` member, for every other
member) never runs out in practice."""

DEVELOPMENT_NAMESPACES: Mapping[str, tuple[str, ...]] = {"carrier": ("MAEU", "NMFTA:MAEU")}
"""Business-key namespaces the development cast holds: the README's and the DCSA sample's
carrier code, so that only the development carrier registers B/Ls under it."""


def development_genesis(
    keys: Mapping[str, str], *, validators: Mapping[str, int] | None = None, genesis_time: int = 0
) -> PartyGenesis:
    """The development cast from ``name -> public key hex``; every cast name must be present.

    ``validators`` (public key -> power) is optional: the consensus genesis also lists them.
    """
    missing = [name for name, *_ in DEVELOPMENT_CAST if name not in keys]
    if missing:
        raise ValueError(f"development genesis needs keys for {missing}")
    return PartyGenesis(
        genesis_time=genesis_time,
        members=tuple(
            GenesisMember(
                name=name,
                organisation=org,
                jurisdiction=where,
                public_key=keys[name],
                roles=list(roles),
                namespaces=DEVELOPMENT_NAMESPACES.get(name, ()),
                kyc=None
                if "kyc_provider" in roles
                else GenesisKyc(
                    provider=keys["kyc"],
                    expires_at=DEVELOPMENT_KYC_UNTIL,
                    qualified_investor=name in DEVELOPMENT_QUALIFIED_INVESTORS,
                ),
            )
            for name, org, where, roles in DEVELOPMENT_CAST
        ),
        role_kinds={role: [*kinds, *_EVERY_MEMBER] for role, kinds in DEFAULT_ROLE_KINDS.items()},
        validators=tuple(GenesisValidator(public_key=k, power=p) for k, p in (validators or {}).items()),
    )


def genesis_state_events(section: Mapping[str, Any], chain: Genesis) -> list[Event]:
    """The party section of a genesis file as events: the section's own, with the chain's
    validator set (the section may restate it, but never differ), then the chain's nodes."""
    model = PartyGenesis.model_validate(section)
    chain_set = validator_set(chain.validators)
    if not model.validators:  # the party state starts from the chain's own set
        model = model.model_copy(update={"validators": chain_set})
    elif validator_set(model.validators) != chain_set:
        raise ValueError("the party section's validators differ from the genesis validators")
    events: list[Event] = list(genesis_events(model, chain.params.genesis_rules("party")))
    return events + node_events(chain.nodes, len(events), model.genesis_time)
