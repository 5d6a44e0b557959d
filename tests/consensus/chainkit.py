"""Helpers that build real, correctly signed chains in memory for unit tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from traco.core import crypto
from traco.schemas.block import Commit, CommitSig, SealedBlock, vote_sign_bytes
from traco.schemas.genesis import Genesis, GenesisMember, GenesisValidator, ValidatorPower, validator_set
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services.consensus import rules
from traco.services.consensus.rules import ChainTip


@dataclass
class Kit:
    """A genesis with four validators and two members, and the keys to sign for them."""

    validator_keys: list[bytes] = field(default_factory=lambda: [crypto.generate_private_key() for _ in range(4)])
    member_keys: list[bytes] = field(default_factory=lambda: [crypto.generate_private_key() for _ in range(2)])
    chain_id: str = "unit"

    def __post_init__(self) -> None:
        self.genesis = Genesis(
            chain_id=self.chain_id,
            genesis_time=1_700_000_000_000,
            validators=tuple(
                GenesisValidator(name=f"v{i}", public_key=crypto.public_key(k).hex(), power=1)
                for i, k in enumerate(self.validator_keys)
            ),
            members=tuple(
                GenesisMember(name=f"m{i}", public_key=crypto.public_key(k).hex())
                for i, k in enumerate(self.member_keys)
            ),
        )
        self.nonces: dict[int, int] = {}

    def anchor(self, member: int = 0, label: str = "x", nonce: int | None = None) -> TxEnvelope:
        if nonce is None:
            nonce = self.nonces.get(member, 0) + 1
            self.nonces[member] = nonce
        digest = hashlib.sha256(label.encode()).hexdigest()
        return sign_tx(
            self.member_keys[member],
            self.chain_id,
            "chain.anchor",
            nonce,
            {"digest": digest, "label": label},
        )

    def seal(
        self,
        tip: ChainTip,
        txs: list[TxEnvelope],
        signers: int = 3,
        round_: int = 0,
        keys: list[bytes] | None = None,
        next_validators: tuple[ValidatorPower, ...] | None = None,
    ) -> SealedBlock:
        """Block ``tip.height + 1`` signed by ``keys`` (default: the first ``signers`` genesis
        validators); ``next_validators`` makes it announce a new set from the next height on."""
        signing = self.validator_keys[:signers] if keys is None else keys
        proposer = crypto.public_key(signing[0]).hex()
        header = rules.build_header(self.genesis, tip, round_, tip.time + 1000, proposer, txs, next_validators)
        block_hash = header.block_hash()
        message = vote_sign_bytes(self.chain_id, "precommit", header.height, round_, block_hash)
        sigs = tuple(
            CommitSig(validator=crypto.public_key(k).hex(), signature=crypto.sign(k, message).hex()) for k in signing
        )
        return SealedBlock(
            header=header,
            txs=tuple(txs),
            commit=Commit(height=header.height, round=round_, block_hash=block_hash, signatures=sigs),
            next_validators=None
            if next_validators is None
            else rules.carried_validators(tip.validators, next_validators),
        )

    def power_set(self, keys: list[bytes]) -> tuple[ValidatorPower, ...]:
        """A validator set of power 1 each for ``keys``."""
        return validator_set(ValidatorPower(public_key=crypto.public_key(k).hex(), power=1) for k in keys)
