"""The securitisation flow: its kinds. No clause (a collection distributes at once, see ``rules``)
and no managed hold (the pool's cash is its own account, ``abs:<pool_id>``)."""

from __future__ import annotations

from typing import Final

from traco.services.trade.abs import rules
from traco.services.trade.abs import state as s
from traco.services.trade.flow import Flow

FLOW: Final = Flow(name="abs", rules=rules.RULES, hold_prefix=s.ACCOUNT_PREFIX)
