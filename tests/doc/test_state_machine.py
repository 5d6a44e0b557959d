"""Any interleaving of pledges, releases, transfers, surrenders, amendments and time never
finances a document twice and never lets anyone but the holder move or encumber it.

Hypothesis drives the real rules (through ``run_block``, several transactions per block) beside
``Model``, a slow and obviously right reference that holds, per document, only its holder, its
one pledge and whether it is final. Every receipt code must match the model's, and two checks
read nothing but the accepted events: pledges of one document never overlap in time, and every
title action was taken by the holder of the moment. At the end the events are replayed into an
empty state, which must equal the executed one byte for byte.

The machine runs under both versions of doc's rules: version 1 (a pledge binds at once) and
version 2 (``PledgeMachineV2``: the holder offers, the financier accepts, and with several offers
open only the first acceptance may bind — ``rival_offers`` races two; amending a held title needs
the holder's signed consent).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.doc.helpers import CHAIN, DAY, Actor, Cast, Ledger, bl_payload, file_hash, tx_id_for
from traco.core.domain import DictState, Rejected
from traco.services.doc import consent, mutations, queries

CAST = Cast()
PARTY = CAST.view()
DOCS = 2
# Repetition weights the draws towards actions that can succeed; "@holder" and "@financier" stand
# for whoever holds the document, or financed it, at that moment.
KINDS = (
    ("doc.pledge",) * 4
    + ("doc.pledge.accept",) * 3
    + ("doc.release",) * 2
    + ("doc.transfer",) * 3
    + ("doc.surrender", "doc.amend")
)
SENDERS = (
    ("@holder",) * 8
    + ("@financier",) * 3
    + ("@offeree",) * 3
    + ("exporter", "importer", "bank_a", "bank_b", "factor", "carrier", "carrier", "stranger", "applicant")
)
OTHERS = (
    "bank_a",
    "bank_a",
    "bank_b",
    "factor",
    "factor",
    "importer",
    "exporter",
    "suspended",
    "stranger",
    "applicant",
)
TTLS = (-1, 0, 1, 1_000, 3_000, 5_000, 60_000, 60_000, DAY)
NAME_OF = {
    CAST.specs[getattr(CAST, name)].member_id: name
    for name in ("exporter", "importer", "bank_a", "bank_b", "factor", "carrier")
}
"""Member id -> cast name, to turn "@holder" into a sender."""
DOC_ROLES = {"exporter", "importer", "carrier", "warehouse", "bank", "insurer", "factor", "regulator"}


def actor(name: str) -> Actor:
    found: Actor = getattr(CAST, name)
    return found


def member_id(name: str) -> str | None:
    """The member id of an *admitted* member's key, else ``None``."""
    spec = CAST.specs.get(actor(name))
    return spec.member_id if spec is not None and spec.status == "admitted" else None


def roles(name: str) -> set[str]:
    spec = CAST.specs.get(actor(name))
    return set(spec.roles) if spec is not None and spec.status == "admitted" else set()


@dataclass(frozen=True)
class Action:
    kind: str
    sender: str
    doc: int  # counted from the newest document: 0 is the newest
    other: str = ""
    ttl: int = 0
    stale: bool = False  # aim at the first (possibly superseded) version instead of the newest


@dataclass
class ModelDoc:
    versions: list[str]
    holder: str
    pledge: tuple[str, int] | None = None  # (financier member id, expires_at)
    surrendered: bool = False
    offers: dict[str, int] = field(default_factory=dict)  # rules v2: financier member id -> expires_at


@dataclass
class Model:
    """The reference: a few lines per kind, in the documented check order; ``rules`` is the
    version of doc's rules (2: pledges are offered, then accepted; amending a held title needs
    the holder's consent, which the drawn ``other`` gives)."""

    docs: list[ModelDoc] = field(default_factory=list)
    rules: int = 1

    def step(self, a: Action, time: int, tx_id: str) -> str:
        if a.kind == "doc.pledge.accept" and self.rules < 2:
            return "UNKNOWN_KIND"
        me = member_id(a.sender)
        if me is None or not roles(a.sender) & DOC_ROLES:
            return "NOT_PERMITTED"
        if a.kind == "doc.pledge" and a.ttl <= 0:
            return "INVALID_PAYLOAD"
        doc = self.docs[a.doc]  # already resolved to an absolute index
        if a.stale and len(doc.versions) > 1:
            return "SUPERSEDED"
        if doc.surrendered:
            return "SURRENDERED"
        in_force = doc.pledge is not None and time < doc.pledge[1]
        if a.kind == "doc.pledge.accept":
            offered = doc.offers.get(me)
            if offered is None or time >= offered:
                return "NOT_OFFERED"
            if in_force:
                return "ALREADY_PLEDGED"
            doc.pledge = (me, doc.offers.pop(me))
            return "OK"
        if a.kind == "doc.release":
            if doc.pledge is None:
                if self.rules >= 2 and doc.offers and me == doc.holder:
                    doc.offers = {}
                    return "OK"
                return "NOT_PLEDGED"
            if me != doc.pledge[0]:
                if me != doc.holder:
                    return "NOT_FINANCIER"
                if in_force:
                    return "PLEDGE_ACTIVE"
            doc.pledge = None
            return "OK"
        if a.kind == "doc.amend":
            if me != "carrier":
                return "NOT_ISSUER"
            if in_force:
                return "PLEDGED"
            if self.rules >= 2 and doc.holder != "carrier" and member_id(a.other) != doc.holder:
                return "HOLDER_CONSENT_REQUIRED"
            doc.versions.append(tx_id)
            doc.pledge, doc.offers = None, {}
            return "OK"
        if me != doc.holder:
            return "NOT_HOLDER"
        if a.kind == "doc.pledge":
            if in_force:
                return "ALREADY_PLEDGED"
            financier = member_id(a.other)
            if financier is None:
                return "NOT_A_MEMBER"
            if not roles(a.other) & {"bank", "factor"}:
                return "NOT_FINANCIER"
            if financier == doc.holder:
                return "INVALID_PAYLOAD"
            if self.rules >= 2:
                doc.offers[financier] = time + a.ttl
            else:
                doc.pledge = (financier, time + a.ttl)
            return "OK"
        if in_force:
            return "PLEDGED"
        if a.kind == "doc.surrender":
            doc.surrendered, doc.pledge, doc.offers = True, None, {}
            return "OK"
        recipient = member_id(a.other)  # doc.transfer
        if recipient is None:
            return "NOT_A_MEMBER"
        if recipient == doc.holder:
            return "INVALID_PAYLOAD"
        doc.holder, doc.pledge, doc.offers = recipient, None, {}
        return "OK"


def actions() -> st.SearchStrategy[Action]:
    """Flat draws (one tuple of choices) keep Hypothesis's own cost low."""
    choices = st.tuples(
        st.sampled_from(KINDS),
        st.sampled_from(SENDERS),
        st.integers(0, 3),
        st.sampled_from(OTHERS),
        st.sampled_from(TTLS),
        st.sampled_from((False, False, False, True)),
    )
    return choices.map(lambda c: Action(*c))


class PledgeMachine(RuleBasedStateMachine):
    RULES = 1
    """The version of doc's rules the machine drives (the subclass below runs version 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(party=PARTY, rules=self.RULES)
        self.model = Model(rules=self.RULES)
        registered = self.ledger.block(
            [(CAST.carrier, "doc.register", bl_payload(f"bl-{i}", holder=CAST.exporter.key)) for i in range(DOCS)]
        )
        for outcome in registered:
            assert not isinstance(outcome, Rejected)
            self.model.docs.append(ModelDoc([outcome.result["doc_id"]], "exporter"))
        self.checked = 0
        self.open_pledge: dict[str, tuple[int, str] | None] = {}
        self.holder: dict[str, str] = {}

    def resolve(self, a: Action) -> Action:
        """Make the document index absolute; replace a symbolic sender by the member it stands for."""
        a = replace(a, doc=len(self.model.docs) - 1 - a.doc % len(self.model.docs))
        doc = self.model.docs[a.doc]
        if a.sender == "@holder":
            return replace(a, sender=NAME_OF[doc.holder])
        if a.sender == "@financier":
            return replace(a, sender=NAME_OF[doc.pledge[0]] if doc.pledge is not None else "bank_a")
        if a.sender == "@offeree":
            return replace(a, sender=NAME_OF[min(doc.offers)] if doc.offers else "bank_b")
        return a

    def payload(self, a: Action, time: int, tx_id: str) -> dict[str, object]:
        doc = self.model.docs[a.doc]
        doc_id = doc.versions[0] if a.stale else doc.versions[-1]
        if a.kind == "doc.pledge":
            return {"doc_id": doc_id, "financier": actor(a.other).key, "amount": 1_000, "currency": "USD",
                    "expires_at": time + a.ttl}  # fmt: skip
        if a.kind == "doc.transfer":
            return {"doc_id": doc_id, "to": actor(a.other).key}
        if a.kind == "doc.amend":
            payload: dict[str, object] = {"doc_id": doc_id, "file_hash": file_hash(tx_id)}
            if self.RULES >= 2:  # the drawn other party signs; only the holder's signature counts
                signature = consent.sign_amend(actor(a.other).seed, CHAIN, doc_id, file_hash(tx_id), None)
                payload["holder_consent"] = {"key": actor(a.other).key, "signature": signature}
            return payload
        return {"doc_id": doc_id}

    @rule(batch=st.lists(actions(), min_size=1, max_size=4))
    def block(self, batch: list[Action]) -> None:
        self.execute(batch)

    @rule(doc=st.integers(0, 3), split=st.booleans())
    def rival_offers(self, doc: int, split: bool) -> None:
        """Two financiers offered the same document, each then accepting (in one block or two):
        under version 2 the second acceptance is the double financing to refuse."""
        offers = [Action("doc.pledge", "@holder", doc, other, DAY) for other in ("bank_a", "bank_b")]
        accepts = [Action("doc.pledge.accept", name, doc) for name in ("bank_b", "bank_a")]
        if split:
            self.execute(offers)
            self.execute(accepts)
        else:
            self.execute(offers + accepts)

    def execute(self, batch: list[Action]) -> None:
        time, height = self.ledger.time + self.ledger.tick, self.ledger.height + 1
        txs, expected = [], []
        for i, drawn in enumerate(batch):  # payload and model step interleaved: later txs see earlier ones
            a = self.resolve(drawn)
            tx_id = tx_id_for(height, i, actor(a.sender).key, a.kind)
            txs.append((actor(a.sender), a.kind, self.payload(a, time, tx_id)))
            expected.append(self.model.step(a, time, tx_id))
        outcomes = self.ledger.block(txs)
        got = [o.code if isinstance(o, Rejected) else "OK" for o in outcomes]
        assert got == expected, list(zip(txs, outcomes, strict=True))

    @precondition(lambda self: sum(not doc.surrendered for doc in self.model.docs) < DOCS)
    @rule()
    def fresh_document(self) -> None:
        """Register one more B/L to the exporter, so surrenders do not end the exploration."""
        label = f"bl-{len(self.model.docs)}"
        outcome = self.ledger.submit(CAST.carrier, "doc.register", bl_payload(label, holder=CAST.exporter.key))
        assert not isinstance(outcome, Rejected)
        self.model.docs.append(ModelDoc([outcome.result["doc_id"]], "exporter"))

    @rule(ms=st.sampled_from([1, 999, 2_000, 5_000, DAY]))
    def advance(self, ms: int) -> None:
        self.ledger.time += ms

    @invariant()
    def holder_and_pledge_match_the_model(self) -> None:
        for doc in self.model.docs:
            record = queries.document(self.ledger.state, doc.versions[-1])
            assert record is not None
            assert record["holder"]["member_id"] == doc.holder
            assert record["status"] == ("surrendered" if doc.surrendered else "active")
            terms = queries.active_pledge(self.ledger.state, doc.versions[-1], self.ledger.time)
            in_force = doc.pledge if doc.pledge is not None and self.ledger.time < doc.pledge[1] else None
            assert (None if terms is None else (terms["financier"]["member_id"], terms["expires_at"])) == in_force

    @invariant()
    def events_never_show_two_pledges_or_a_non_holder_acting(self) -> None:
        for event in self.ledger.events[self.checked :]:
            lineage, data, when = event.aggregate_id, event.data, event.data["time"]
            open_pledge = self.open_pledge.get(lineage)
            still_open = open_pledge is not None and when < open_pledge[0]
            if event.type == "DocumentRegistered":
                self.holder[lineage] = data["document"]["holder"]["member_id"]
            elif event.type == "PledgeReleased":
                self.open_pledge[lineage] = None
            elif event.type == "PledgeOffered":
                assert data["by"]["member_id"] == self.holder[lineage], "an offer by a non-holder"
            elif event.type in ("DocumentPledged", "TitleTransferred", "DocumentSurrendered", "DocumentAmended"):
                assert not still_open, f"{event.type} while pledge {open_pledge} is in force"
                if event.type == "DocumentPledged" and self.RULES >= 2:  # only the financier binds itself
                    assert data["by"]["member_id"] == data["pledge"]["financier"]["member_id"], "accepted by another"
                elif event.type != "DocumentAmended":
                    assert data["by"]["member_id"] == self.holder[lineage], f"{event.type} by a non-holder"
                self.open_pledge[lineage] = None
                if event.type == "DocumentPledged":
                    self.open_pledge[lineage] = (data["pledge"]["expires_at"], data["tx_id"])
                if event.type == "TitleTransferred":
                    self.holder[lineage] = data["to"]["member_id"]
        self.checked = len(self.ledger.events)

    def teardown(self) -> None:
        replayed = DictState()
        for event in self.ledger.events:
            replayed.apply(mutations.mutate(replayed, event))
        assert replayed.data == self.ledger.state.data


TestPledgeInterleavings = PledgeMachine.TestCase
TestPledgeInterleavings.settings = settings(max_examples=100, stateful_step_count=25, deadline=None)


class PledgeMachineV2(PledgeMachine):
    RULES = 2


TestPledgeInterleavingsV2 = PledgeMachineV2.TestCase
TestPledgeInterleavingsV2.settings = settings(max_examples=100, stateful_step_count=25, deadline=None)
