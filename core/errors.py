"""Every exception TRACO raises on purpose, in one place.

Exceptions here are for failures of the machinery: a broker that does not start, a topic
that was never created, a bus that refuses a message. Outcomes that belong to the ledger
(a document pledged twice, a bad signature, insufficient funds) are *values*, receipt codes,
never exceptions (see architecture: Execution).

Adapters translate their technology's errors (aiokafka's ``KafkaError``, a dead subprocess)
into these classes, so callers catch one family whichever adapter the settings chose, and the
original error stays reachable as ``__cause__``.

Hierarchy::

    TracoError                      base of everything below; catch this at entry points
    ├── BusError                    the event bus could not do what was asked
    │   ├── TopicNotReady           the topic was never created (or not visible in metadata in
    │   │                           time); the bus refuses to publish or consume rather than let
    │   │                           the broker auto-create it (decision 0006)
    │   └── OffsetOutOfRange        a consumer asked to start past the end of a partition
    ├── BrokerStartError            the embedded broker's binary is missing, or it died or did
    │                               not answer a metadata request in time
    ├── StorageError                a block or state store failed (file, database, driver); the
    │   │                           driver's own error is ``__cause__``
    │   ├── ForkDetected            a *different* block offered at a height that already holds
    │   │                           a sealed one: two blocks sealed at one height
    │   └── HeightGap               a block or state batch that is not at stored height + 1
    └── KeyCustodyError             a private key cannot be used (docs/key-custody.md)
        ├── KeyFileError            a key file is missing, malformed, of an unknown version or
        │                           tampered with, or would overwrite another file
        ├── WrongPassphrase         an encrypted key file does not open with the passphrase
        ├── PassphraseUnavailable   no passphrase source: no environment variable, no file, no
        │                           terminal to ask on
        └── SignerError             a signer (an HSM through PKCS#11) could not be opened, logged
                                    into, find its key, or sign

Add new classes under the closest parent and extend the drawing above.
"""

from __future__ import annotations


class TracoError(Exception):
    """Base class of every exception TRACO raises deliberately."""


class BusError(TracoError):
    """The event bus failed: not started, broker unreachable, message rejected, ..."""


class TopicNotReady(BusError):
    """A topic is missing, or did not show all its partitions in metadata in time.

    Raised instead of letting the broker auto-create a topic: on Tansu an auto-created topic
    gets 4 partitions whatever the design says and loses acknowledged messages (decision 0006).
    """

    def __init__(self, topic: str, message: str) -> None:
        super().__init__(message)
        self.topic = topic


class OffsetOutOfRange(BusError):
    """A consumer asked for an offset beyond the end of a partition.

    Kafka would silently reset such a position and Tansu would silently wait for it, so the
    bus refuses instead: the caller holds an offset from another broker's life.
    """


class BrokerStartError(TracoError):
    """The embedded broker could not be started (binary missing, exited, or never ready)."""


class StorageError(TracoError):
    """A block or state store failed: unreadable file, unreachable database, refused write.

    Also raised for misuse that the store detects, such as writing through a store opened
    read-only or opening a file written by a newer schema version.
    """


class ForkDetected(StorageError):
    """A different block was offered at a height that already holds a sealed block.

    BFT consensus must never seal two blocks at one height, so this means the chain forked
    (more than a third of the validators misbehaved) or the offered block is not of this
    chain. The stored block is left unchanged; an operator must investigate.
    """

    def __init__(self, height: int, stored_hash: str, offered_hash: str) -> None:
        super().__init__(
            f"fork at height {height}: the store holds block {stored_hash}, "
            f"a different block {offered_hash} was offered"
        )
        self.height = height
        self.stored_hash = stored_hash
        self.offered_hash = offered_hash

    def __reduce__(self) -> tuple[type[ForkDetected], tuple[int, str, str]]:
        return (type(self), (self.height, self.stored_hash, self.offered_hash))


class HeightGap(StorageError):
    """A block or state batch was offered that does not follow the stored height.

    Stores are gap-free: height ``h`` is written only after ``h - 1``. The caller must fetch
    and apply the missing heights first.
    """

    def __init__(self, stored_height: int, offered_height: int, what: str = "block") -> None:
        super().__init__(
            f"{what} at height {offered_height} does not follow the stored height "
            f"{stored_height} (expected {stored_height + 1})"
        )
        self.stored_height = stored_height
        self.offered_height = offered_height
        self.what = what

    def __reduce__(self) -> tuple[type[HeightGap], tuple[int, int, str]]:
        return (type(self), (self.stored_height, self.offered_height, self.what))


class KeyCustodyError(TracoError):
    """A private key could not be made usable; the message says what to do about it."""


class KeyFileError(KeyCustodyError):
    """A key file is missing, malformed, of an unknown format version or was tampered with."""


class WrongPassphrase(KeyCustodyError):
    """The passphrase does not open an encrypted key file (or the file's ciphertext changed)."""


class PassphraseUnavailable(KeyCustodyError):
    """An encrypted key needs a passphrase and no source of one is configured."""


class SignerError(KeyCustodyError):
    """A signer could not be opened, logged into, find its key, or sign."""
