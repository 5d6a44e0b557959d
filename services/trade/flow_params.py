"""The council's parameters for the trade flows, read from party (``service_param/trade/flows``).

Why governed and not genesis: a grace period, an arbiter or a dispute window are business
terms a consortium revisits; the council sets them with ``set_service_param`` (party), trade
reads them from its projection of party as of the previous block, so every replica applies the
same value from the same height. A value trade cannot use (wrong type, out of bounds) is ignored
as a whole and the defaults apply — never half applied; it stays visible in party for the
council to correct.

Fields (all optional in the council's value; defaults below):

- ``loan_grace_ms``: after a loan's maturity, how long before it defaults (3 days; at most
  ``MAX_GRACE_MS``). A loan keeps the grace in force when it was accepted.
- ``escrow_arbiter``: the member who decides disputed escrows (none: a dispute waits for the
  escrow's expiry, which refunds the buyer).
- ``escrow_dispute_ms``: how long a dispute keeps the escrow from expiring (14 days).
- ``settlement_agents``: when the council lists any, a delivery against payment may name only
  one of them as its settlement agent (empty by default: any admitted member the parties name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from traco.core.domain import StateView
from traco.services.trade.codes import SERVICE
from traco.services.trade.fields import Account

DAY_MS: Final = 86_400_000
MAX_GRACE_MS: Final = 30 * DAY_MS
"""With the longest tenor (``loans.payloads.MAX_TENOR_MS``) and the pledge margin it keeps the
pledge within doc's longest term (400 days)."""
PARAM_KEY: Final = "flows"


class FlowParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    loan_grace_ms: Annotated[int, Field(ge=0, le=MAX_GRACE_MS)] = 3 * DAY_MS
    escrow_arbiter: Account | None = None
    escrow_dispute_ms: Annotated[int, Field(ge=60_000, le=366 * DAY_MS)] = 14 * DAY_MS
    settlement_agents: tuple[Account, ...] = ()


DEFAULTS: Final = FlowParams()


def flow_params(party: Any, members: StateView | None) -> FlowParams:
    """The council's flow parameters as of the previous block, or the defaults."""
    if members is None:
        return DEFAULTS
    raw: Mapping[str, Any] | None = party.service_param(members, SERVICE, PARAM_KEY)
    if raw is None:
        return DEFAULTS
    try:
        value = dict(raw)
        if "settlement_agents" in value and isinstance(value["settlement_agents"], list):
            value["settlement_agents"] = tuple(value["settlement_agents"])
        return FlowParams.model_validate(value)
    except (ValidationError, TypeError, ValueError):
        return DEFAULTS
