"""Wire and storage models of the ledger: frozen pydantic models, one canonical encoding.

Everything that is signed or hashed is encoded with ``traco.core.canonical.canonicalize``
(RFC 8785) over the model's JSON form (``model_dump(mode="json")``). The JSON Schemas
generated from these models are checked in under ``schemas/json/`` (``traco schemas export``).
"""

from traco.schemas.block import BlockHeader, Commit, CommitSig, SealedBlock
from traco.schemas.events import BlockProcessed
from traco.schemas.genesis import Genesis, GenesisMember, GenesisValidator
from traco.schemas.receipt import Receipt, ReceiptStatus
from traco.schemas.tx import TxEnvelope

__all__ = [
    "BlockHeader",
    "BlockProcessed",
    "Commit",
    "CommitSig",
    "Genesis",
    "GenesisMember",
    "GenesisValidator",
    "Receipt",
    "ReceiptStatus",
    "SealedBlock",
    "TxEnvelope",
]
