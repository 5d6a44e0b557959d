"""TRACO: a permissioned, BFT-sealed ledger for trade and supply-chain finance.

The repository keeps each part in its own top-level folder (``core/``, ``schemas/``,
``services/``, ``cli/``); this package links them under one ``traco`` namespace so that
``traco.core``, ``traco.schemas`` and ``traco.services.consensus`` import the same way in a
checkout, an editable install and a wheel.
"""

__version__ = "0.1.0"
