"""Which version of party's rules decides (architecture: Execution: rules are versioned by activation height).

``TxContext.rules`` is the version in force at the transaction's height: the genesis's
(``ChainParams.rules``, 1 when unset) until a council ``upgrade`` moves it up. A rule whose
decision changed asks ``rules_v2(tx)``; version 1 keeps exactly today's decisions, so a chain made
before a fix replays to the same bytes (decision 0021).

What version 2 changes in party:

* **Key rotation** (``party.key.rotate``) only by a current key that is not itself rotating
  out: a key in its overlap period can no longer rotate out the member's other keys
  (``NOT_PERMITTED``). In version 1 it could, so a stolen old key outlived its own revocation
  by taking the fresh keys with it.
* **One namespace form** (``assign_namespace``, genesis namespaces): a namespace is assigned
  under ``state.canonical_namespace`` (``NMFTA:MAEU`` is ``MAEU``), and the assignment replaces
  any version-1 spelling of it, so one namespace has one owner.
"""

from __future__ import annotations

from traco.core.domain import TxContext

RULES_VERSION = 2
"""The newest version of party's rules this binary knows; new chains start at it."""


def rules_v2(tx: TxContext) -> bool:
    """True where version 2 of party's rules is in force at ``tx``'s height."""
    return tx.rules >= 2


__all__ = ["RULES_VERSION", "rules_v2"]
