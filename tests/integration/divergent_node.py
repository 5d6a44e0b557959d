"""The ``traco`` command with a doc replica that computes something else: for tests only.

``python -m tests.integration.divergent_node serve node --node n3`` runs node n3 exactly as
``traco`` would, except that its doc rules mark every registration they accept: the receipt's
result and the events differ, so its digest, its receipts root and its state root differ from
the honest nodes'. The fault lives in the domain, where a real bug would.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping

from traco.core.domain import Accepted, Outcome, StateView, TxContext
from traco.services.doc import domain as doc_domain

_honest = doc_domain.DocDomain.execute


def _diverging(
    self: doc_domain.DocDomain, state: StateView, upstream: Mapping[str, StateView], tx: TxContext
) -> Outcome:
    outcome = _honest(self, state, upstream, tx)
    if isinstance(outcome, Accepted) and tx.kind == "doc.register":
        events = tuple(dataclasses.replace(e, data={**e.data, "diverged": True}) for e in outcome.events)
        return Accepted(events, {**outcome.result, "diverged": True})
    return outcome


doc_domain.DocDomain.execute = _diverging  # type: ignore[method-assign]

if __name__ == "__main__":
    from traco.cli.main import app

    sys.argv[0] = "traco"
    app()
