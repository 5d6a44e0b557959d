"""The field types every trade payload is built from, and the strict ``Payload`` base.

Why a module of its own: the payload models of the core kinds (``payloads``) and of each flow
(``<flow>/payloads.py``: escrow, loans, delivery against payment, the exchange, securitisation)
are built from the same types, and ``payloads.MODELS`` gathers every flow's models. Flows import
this module, never ``payloads``, so gathering them creates no import cycle.

Amounts are integers in the token's minor units, positive and within the canonical encoding's
safe range (±(2**53 - 1)): a larger number would not survive as JSON in every client. Accounts
are party member ids (lowercase, hyphens), never keys: a member who rotates its key keeps its
balances.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from traco.core.canonical import MAX_SAFE_INTEGER
from traco.core.text import C0_CONTROL

MEMBER_ID_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
"""Party's member id form (read from party's documentation; trade never imports party's code)."""
TOKEN_PATTERN: Final = r"^[A-Z][A-Z0-9]{1,15}$"
OPERATION_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""A hold id a member chooses. No ``:``: ids with one (``exercise:<tx_id>``) are the service's
own, so no one can take an id a rule is about to use (front-running an exercise)."""
HOLD_REF_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""Any hold id, the service's own included (and doc's title holds)."""
HEX64_PATTERN: Final = r"^[0-9a-f]{64}$"


def _plain_text(value: str) -> str:
    if value != value.strip() or C0_CONTROL.search(value):
        raise ValueError("must not start or end with whitespace or contain control characters")
    return value


Account = Annotated[str, StringConstraints(pattern=MEMBER_ID_PATTERN)]
Notary = Annotated[
    str, StringConstraints(pattern=r"^(?:service:[a-z][a-z0-9_]{0,31}|[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)$")
]
"""A member id, or ``service:<name>`` for a service deciding by command."""
TokenId = Annotated[str, StringConstraints(pattern=TOKEN_PATTERN)]
OperationId = Annotated[str, StringConstraints(pattern=OPERATION_ID_PATTERN)]
HoldRef = Annotated[str, StringConstraints(pattern=HOLD_REF_PATTERN)]
Amount = Annotated[int, Field(gt=0, le=MAX_SAFE_INTEGER)]
NonNegative = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
Height = Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]
Millis = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_plain_text)]
Hex64 = Annotated[str, StringConstraints(pattern=HEX64_PATTERN)]


class Payload(BaseModel):
    """Base of every payload: frozen, no unknown fields, no type coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
