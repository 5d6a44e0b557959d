"""Typed wire models for the integration contract: one transaction model per kind, one event
model per event type, and the dead-letter record, all built from the models that execute.

Why built rather than written: the envelope (``TxEnvelope``) and the event (``DomainEvent``)
are generic on the wire (``payload`` and ``data`` are JSON objects), because consensus orders
any kind and the runtime stores any event. An integrator needs more: for ``doc.pledge`` the
payload that the doc rules validate. So each kind's model here is ``TxEnvelope`` with ``kind``
fixed and ``payload`` replaced by the very payload model the service's rules use
(``services/party/models.py``, ``services/doc/payloads.py``, ``chain.anchor`` in
``services/consensus/rules.py``), and each event is ``DomainEvent`` with ``type``/``service``
fixed and ``data`` typed by ``asyncapi_events``. A test checks that every kind the chain knows
(``services/registry.py`` plus ``chain.anchor``) has its model here.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, create_model

from traco.schemas import asyncapi_events, asyncapi_events_doc, asyncapi_events_trade
from traco.schemas.asyncapi_events import EventData
from traco.schemas.events import DomainEvent
from traco.schemas.tx import TxEnvelope
from traco.services.trade.flow_events import FLOW_EVENT_DATA


def _named(module: Any, names: str) -> dict[str, type[EventData]]:
    return {name: getattr(module, name) for name in names.split()}


EVENT_DATA: dict[str, dict[str, type[EventData]]] = {
    "chain": _named(asyncapi_events, "Anchored ValidatorSetChanged"),
    "party": _named(
        asyncapi_events,
        "MemberRegistered MemberAdmitted MemberSuspended KycRecorded KeyRotated RoleGranted RoleRevoked "
        "RoleKindsSet RulesSet ChainParamsSet UpgradeScheduled ServiceParamSet ValidatorAdded ValidatorRemoved "
        "NamespaceAssigned "
        "NodeRegistered NodeKeyRotated AgreementRecorded ProposalCreated VoteCast ProposalPassed ProposalRejected "
        "ProposalVoided DelegationRecorded DelegationRevoked",
    ),
    "doc": _named(
        asyncapi_events_doc,
        "DocumentRegistered MilestoneRecorded TitleTransferred DocumentSurrendered DocumentPledged PledgeReleased "
        "DocumentAmended DocumentKeyShared TitleHeld TitleHoldExecuted TitleHoldReleased TitleHoldRenewed "
        "TitleHoldExpired PledgeOffered PledgeOffersWithdrawn PledgeExtended PledgeEnforced DocumentLiened",
    ),
    "trade": _named(
        asyncapi_events_trade,
        "AssetClassDefined TokenDefined Configured Allocated PoolFunded LockSet Transferred HoldCreated "
        "HoldExecuted HoldReleased HoldExpired HoldRenewed AttestationSigned ReserveAttested Minted Burned "
        "RedemptionRequested RedemptionPaid AccountFrozen AccountUnfrozen CocoEpochPaid EquityDefined "
        "SharesDeposited ExerciseFiled ExerciseSettled CommandSent CommandSettled CustodyStatementListed "
        "AssetClassAdopted CorrectionDecided",
    )
    | FLOW_EVENT_DATA,
}
"""service -> event type -> the model of its ``data`` (the class is named after the type)."""


def payload_models() -> dict[str, type[BaseModel]]:
    """kind -> the payload model its service validates it with: party's by name (its rules route
    kinds through closures), every other executing service's ``payloads.MODELS``."""
    from traco.services import registry
    from traco.services.consensus.rules import AnchorPayload
    from traco.services.party import models as party

    found: dict[str, type[BaseModel]] = {
        "chain.anchor": AnchorPayload,
        "party.register": party.Register,
        "party.kyc": party.KycV2,
        "party.agreement": party.Agreement,
        "party.key.rotate": party.RotateKey,
        "party.propose": party.Propose,
        "party.vote": party.Vote,
        "party.delegate": party.Delegate,
        "party.node.register": party.RegisterNode,
        "party.node.rotate": party.RotateNodeKey,
    }
    for service in registry.ORDER:
        if service != "party":
            found.update(importlib.import_module(f"traco.services.{service}.payloads").MODELS)
    return dict(sorted(found.items()))


def kind_name(kind: str) -> str:
    """``party.key.rotate`` -> ``PartyKeyRotate``; ``doc.share_key`` -> ``DocShareKey``."""
    return "".join(part.capitalize() for word in kind.split(".") for part in word.split("_"))


def _literal(value: str) -> Any:
    return cast(Any, Literal)[value]


def transaction_models() -> dict[str, type[BaseModel]]:
    """kind -> ``TxEnvelope`` with that ``kind`` and its typed ``payload`` (named ``<Kind>Tx``)."""
    out: dict[str, type[BaseModel]] = {}
    for kind, model in payload_models().items():
        name = kind_name(kind)
        # a subclass with a unique name, so two services' ``Register`` never collide in a schema
        payload = create_model(f"{name}Payload", __base__=model, __doc__=model.__doc__ or f"``{kind}`` payload")
        out[kind] = create_model(
            f"{name}Tx",
            __base__=TxEnvelope,
            __doc__=f"A signed ``{kind}`` transaction.",
            kind=(_literal(kind), ...),
            payload=(payload, ...),
        )
    return out


def event_models() -> dict[str, dict[str, type[BaseModel]]]:
    """service -> event type -> ``DomainEvent`` with that type and its typed ``data``."""
    out: dict[str, dict[str, type[BaseModel]]] = {}
    for service, types in EVENT_DATA.items():
        out[service] = {}
        for event_type, data in types.items():
            out[service][event_type] = create_model(
                f"{event_type}Event",
                __base__=DomainEvent,
                __doc__=f"``{event_type}``, emitted by {service}; ``data`` is ``{data.__name__}``.",
                type=(_literal(event_type), ...),
                version=(Literal[1], 1),
                service=(_literal(service), ...),
                data=(data, ...),
            )
    return out


class DeadLetterHeader(BaseModel):
    """One original header of a dead-lettered message (``core/topics.py``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str
    value_b64: str


class DeadLetterRecord(BaseModel):
    """The JSON value of a ``dlq`` message (``core/topics.dead_letter_record``): the original
    message byte for byte (base64: it need not be UTF-8) and why it was refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    source_topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key_b64: str | None
    value_b64: str
    error: str
    headers: list[DeadLetterHeader]
