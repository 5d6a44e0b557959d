"""The trade service's genesis section: asset classes, tokens, TRC custodians, the Coco
allocation and the parameters the rules read.

Why events: like party, trade's height-0 state is the same events that transactions and clauses
emit (``AssetClassDefined``, ``TokenDefined``, ``Configured``, ``Allocated``, ``PoolFunded``,
``LockSet``), so there is one ``mutate`` path and an auditor replays genesis like any block.

Coco (architecture: The code (trade)): ``COCO_UNITS`` (10,000,000,000) whole coins, i.e. ``COCO_UNITS * 10**decimals``
minor units, created here and never again. The allocation is four shares in basis points that
must sum to 10,000 (default 30/15/20/35; the incentive share is a parameter, see
docs/decisions/0016-coco-incentive-share.md). Issuance, private placement and founders go to the
named accounts; the founders' share is locked until ``founders_locked_until_height``; the
incentive share is the pool the epoch clause pays from. Rounding goes to the pool, so the four
parts always sum to the total exactly.

Amounts must stay within the canonical encoding's safe integers (2**53 - 1), so Coco has at most
5 decimals (10**15 minor units); the validator refuses more, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from traco.core.canonical import MAX_SAFE_INTEGER
from traco.core.domain import Event
from traco.services.trade.exchange.payloads import ExchangeSection
from traco.services.trade.payloads import MEMBER_ID_PATTERN, TOKEN_PATTERN

COCO_UNITS: Final = 10_000_000_000
DAY_MS: Final = 86_400_000
TWO_YEARS_MS: Final = 2 * 36_525 * DAY_MS // 100
"""Two Julian years (730.5 days) of block time: the Coco halving period."""
BASIS_POINTS: Final = 10_000

Account = Annotated[str, StringConstraints(pattern=MEMBER_ID_PATTERN)]
TokenId = Annotated[str, StringConstraints(pattern=TOKEN_PATTERN)]
ClassName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Bp = Annotated[int, Field(ge=0, le=BASIS_POINTS)]
Positive = Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]
NonNegative = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class AssetClass(_Config):
    """What a token of this class must support and who may hold it (TRACO 3.3.4)."""

    name: ClassName
    transferable: bool = True
    holdable: bool = True
    mint: Literal["none", "reserve", "deposit"] = "none"
    """``none``: supply fixed at genesis; ``reserve``: custodians mint against attested fiat
    (TRC); ``deposit``: a custodian issues against attested deposits of shares (equity)."""
    burn: Literal["none", "redemption", "exercise"] = "none"
    eligibility: Literal["members", "kyc", "qualified"] = "members"
    """Who may receive it: any admitted member, a KYC-valid one, or a qualified investor."""
    decimals: int = Field(default=2, ge=0, le=18)


class TokenDef(_Config):
    token: TokenId
    name: Text
    asset_class: ClassName
    allocations: dict[Account, Positive] = Field(default_factory=dict)
    """Genesis balances of a fixed-supply token (Coco's come from ``coco`` instead)."""


class FeeTier(_Config):
    """From ``min_amount`` TRC (minor units) up, redeeming costs ``fee`` Coco (minor units)."""

    min_amount: NonNegative
    fee: NonNegative


class TrcParams(_Config):
    token: TokenId = "TRC"
    custodians: tuple[Account, ...] = Field(min_length=1, max_length=32)
    threshold: Positive
    max_reserve_age_ms: Positive = 2 * DAY_MS
    """Older than this, the last attestation no longer supports minting (``RESERVE_STALE``)."""
    redemption_fees: tuple[FeeTier, ...] = (FeeTier(min_amount=0, fee=0),)
    compliance_role: RoleName = "regulator"
    """Party role whose holders may freeze and unfreeze TRC accounts (a governed role)."""


class CocoShares(_Config):
    issuance: Bp = 3_000
    private_placement: Bp = 1_500
    founders: Bp = 2_000
    incentives: Bp = 3_500


class CocoParams(_Config):
    token: TokenId = "COCO"
    issuance: Account
    private_placement: Account
    founders: Account
    shares: CocoShares = CocoShares()
    founders_locked_until_height: NonNegative = 0
    epoch_ms: Positive = 7 * DAY_MS
    halving_ms: Positive = TWO_YEARS_MS
    holders_bp: Bp = 3_000
    """Share of each epoch paid to holders; the rest (liquidity) stays in the pool until the
    exchange (part 2) reports traded volume."""
    start_time: NonNegative | None = None
    """First epoch's start (ms); default: the chain's genesis time."""
    max_epochs_per_block: Positive = 64


class EquityParams(_Config):
    asset_class: ClassName = "equity_anchored"
    settlement_window_ms: Positive = 14 * DAY_MS
    """How long an exercise's hold waits for the settlement agent before it returns."""


class TradeGenesis(_Config):
    asset_classes: tuple[AssetClass, ...] = ()
    tokens: tuple[TokenDef, ...] = ()
    trc: TrcParams | None = None
    coco: CocoParams | None = None
    equity: EquityParams | None = None
    exchange: ExchangeSection | None = None
    """Tradable tokens, each against TRC, with its lot (``services/trade/exchange``)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        classes = {c.name: c for c in self.asset_classes}
        tokens = {t.token: t for t in self.tokens}
        if len(classes) != len(self.asset_classes):
            problems.append("asset class names must be unique")
        if len(tokens) != len(self.tokens):
            problems.append("token ids must be unique")
        for t in self.tokens:
            if t.asset_class not in classes:
                problems.append(f"token {t.token}: unknown asset class {t.asset_class!r}")
            elif sum(t.allocations.values()) > MAX_SAFE_INTEGER:
                problems.append(f"token {t.token}: allocations exceed 2**53 - 1")
        for area, token, mint in (("trc", self.trc, "reserve"), ("coco", self.coco, "none")):
            if token is None:
                continue
            named = tokens.get(token.token)
            if named is None:
                problems.append(f"{area}: token {token.token} is not among the tokens")
            elif named.asset_class in classes and classes[named.asset_class].mint != mint:
                problems.append(f"{area}: token {token.token}'s class must have mint policy {mint!r}")
        if self.trc is not None:
            if self.trc.threshold > len(self.trc.custodians):
                problems.append(f"trc: threshold {self.trc.threshold} exceeds {len(self.trc.custodians)} custodians")
            if len(set(self.trc.custodians)) != len(self.trc.custodians):
                problems.append("trc: custodians must be distinct")
            mins = [tier.min_amount for tier in self.trc.redemption_fees]
            if not mins or mins[0] != 0 or mins != sorted(set(mins)):
                problems.append("trc: redemption fee tiers must start at 0 and strictly increase")
        if self.coco is not None:
            problems.extend(self._coco_problems(self.coco, tokens, classes))
        if self.equity is not None and self.equity.asset_class not in classes:
            problems.append(f"equity: unknown asset class {self.equity.asset_class!r}")
        if self.exchange is not None and self.exchange.pairs and self.trc is None:
            problems.append("exchange: pairs are quoted in TRC, and there is no trc section")
        elif self.exchange is not None and self.trc is not None and self.trc.token in self.exchange.pairs:
            problems.append(f"exchange: {self.trc.token} cannot be traded against itself")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @staticmethod
    def _coco_problems(
        coco: CocoParams, tokens: Mapping[str, TokenDef], classes: Mapping[str, AssetClass]
    ) -> list[str]:
        problems = []
        shares = coco.shares
        if shares.issuance + shares.private_placement + shares.founders + shares.incentives != BASIS_POINTS:
            problems.append("coco: the four shares must sum to 10,000 basis points")
        t = tokens.get(coco.token)
        if t is not None and t.asset_class in classes:
            decimals = classes[t.asset_class].decimals
            if COCO_UNITS * 10**decimals > MAX_SAFE_INTEGER:
                problems.append(f"coco: {decimals} decimals make the supply exceed 2**53 - 1; at most 5")
            if t.allocations:
                problems.append("coco: allocations come from the coco section, not the token's")
        return problems


def parse(section: Mapping[str, Any]) -> TradeGenesis:
    """The validated section. Validated as JSON (strict: ``"5"`` is not ``5``, but arrays are
    tuples), which is what a genesis file is."""
    return TradeGenesis.model_validate_json(orjson.dumps(section))


def coco_total(decimals: int) -> int:
    return int(COCO_UNITS * 10**decimals)


def coco_allocation(coco: CocoParams, decimals: int) -> dict[str, int]:
    """Bucket -> minor units: the named shares rounded down, the rest to the incentive pool."""
    total = coco_total(decimals)
    parts = {
        "issuance": total * coco.shares.issuance // BASIS_POINTS,
        "private_placement": total * coco.shares.private_placement // BASIS_POINTS,
        "founders": total * coco.shares.founders // BASIS_POINTS,
    }
    parts["incentives"] = total - sum(parts.values())
    return parts


def _coco_decimals(g: TradeGenesis) -> int:
    assert g.coco is not None
    name = next(t.asset_class for t in g.tokens if t.token == g.coco.token)
    return next(c.decimals for c in g.asset_classes if c.name == name)


def coco_params(g: TradeGenesis, genesis_time: int) -> dict[str, Any] | None:
    """Coco's parameters as the rules and ``coco.schedule`` read them (``params/coco``): the
    section's, with the first epoch's start, the total and the initial pool filled in. Also what
    ``traco coco schedule`` needs to print the plan from a genesis file alone."""
    if g.coco is None:
        return None
    decimals = _coco_decimals(g)
    params = g.coco.model_dump(mode="json")
    start = genesis_time if g.coco.start_time is None else g.coco.start_time
    pool = coco_allocation(g.coco, decimals)["incentives"]
    params.update(start_time=start, total=coco_total(decimals), pool_initial=pool)
    return params


def genesis_events(section: Mapping[str, Any] | None, chain: Any) -> list[Event]:
    """The trade section as events (``Domain.genesis``); no section, no trade state."""
    if section is None:
        return []
    g = parse(section)
    time = int(getattr(chain, "genesis_time", 0))
    stamp = {"tx_id": None, "height": 0, "time": time}
    events: list[Event] = []

    def add(type_: str, aggregate: str, **data: Any) -> None:
        events.append(Event(type_, aggregate, {**data, **stamp}))

    classes = {c.name: c for c in g.asset_classes}
    for c in g.asset_classes:
        add("AssetClassDefined", f"class:{c.name}", asset_class=c.model_dump(mode="json"))
    for t in g.tokens:
        c = classes[t.asset_class]
        kind = "trc" if g.trc and t.token == g.trc.token else "coco" if g.coco and t.token == g.coco.token else "plain"
        record = {"token": t.token, "name": t.name, "asset_class": c.name, "decimals": c.decimals, "supply": 0}
        add("TokenDefined", f"token:{t.token}", token={**record, "kind": kind})
        for account, amount in sorted(t.allocations.items()):
            add("Allocated", f"token:{t.token}", token=t.token, account=account, amount=amount)
    if g.trc is not None:
        add("Configured", "params:trc", area="trc", params=g.trc.model_dump(mode="json"))
    if g.coco is not None:
        coco = g.coco
        params = coco_params(g, time)
        assert params is not None
        parts = coco_allocation(coco, _coco_decimals(g))
        add("Configured", "params:coco", area="coco", params=params)
        for bucket in ("issuance", "private_placement", "founders"):
            if parts[bucket]:
                add(
                    "Allocated",
                    f"token:{coco.token}",
                    token=coco.token,
                    account=getattr(coco, bucket),
                    amount=parts[bucket],
                )
        if coco.founders_locked_until_height > 0 and parts["founders"]:
            add(
                "LockSet",
                f"token:{coco.token}",
                token=coco.token,
                account=coco.founders,
                amount=parts["founders"],
                until_height=coco.founders_locked_until_height,
            )
        add("PoolFunded", f"token:{coco.token}", token=coco.token, amount=parts["incentives"])
    if g.equity is not None:
        add("Configured", "params:equity", area="equity", params=g.equity.model_dump(mode="json"))
    if g.exchange is not None and g.trc is not None:
        for base, lot in sorted(g.exchange.pairs.items()):
            pair = f"{base}/{g.trc.token}"
            add("PairListed", f"pair:{pair}", pair=pair, base=base, quote=g.trc.token, lot=lot)
    return events


DEVELOPMENT_CUSTODIANS: Final = ("custodian", "bank-a", "bank-b")
"""The development cast's TRC custodians (2 of 3 must attest): the custodian and both banks."""


def development_section(
    *,
    custodians: Sequence[str] = DEVELOPMENT_CUSTODIANS,
    threshold: int = 2,
    founders_locked_until_height: int = 1_000,
    incentives_bp: int = 3_500,
    coco_accounts: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The trade section for the README's cast (member ids are the cast's names): TRC with three
    custodians at 2 of 3, Coco allocated to council seats and a bank (``coco_accounts``:
    issuance, private_placement, founders -> member id), an equity class, and the exchange's pairs
    ECC/TRC (lot 1 ECC: no decimals) and COCO/TRC (lot 1 COCO: 10,000 minor units).

    The custodians and Coco's accounts must be members whose party roles let them submit the
    kinds they need (``trade.trc.attest``/``mint``, ``trade.transfer``); the chain's role table
    is party's, so ``traco init`` passes the names that fit its cast."""
    accounts = {"issuance": "council-1", "private_placement": "bank-b", "founders": "council-2"}
    accounts.update(coco_accounts or {})
    rest = BASIS_POINTS - incentives_bp
    shares = {"issuance": rest * 30 // 65, "private_placement": rest * 15 // 65, "incentives": incentives_bp}
    shares["founders"] = rest - shares["issuance"] - shares["private_placement"]
    section = {
        "asset_classes": [
            {"name": "fiat_stablecoin", "mint": "reserve", "burn": "redemption", "eligibility": "kyc", "decimals": 2},
            {"name": "fixed_supply", "mint": "none", "burn": "none", "eligibility": "members", "decimals": 4},
            {
                "name": "equity_anchored",
                "mint": "deposit",
                "burn": "exercise",
                "eligibility": "qualified",
                "decimals": 0,
            },
        ],
        "tokens": [
            {"token": "TRC", "name": "TRACO Coin (fiat-backed)", "asset_class": "fiat_stablecoin"},
            {"token": "COCO", "name": "Coco", "asset_class": "fixed_supply"},
        ],
        "trc": {
            "custodians": list(custodians),
            "threshold": threshold,
            "redemption_fees": [{"min_amount": 0, "fee": 10_000}, {"min_amount": 1_000_000, "fee": 50_000}],
        },
        "coco": {
            **accounts,
            "shares": shares,
            "founders_locked_until_height": founders_locked_until_height,
        },
        "equity": {},
        "exchange": {"pairs": {"ECC": 1, "COCO": 10_000}},
    }
    parse(section)
    return section
