"""Read side of the trade service's state: the key layout and every read over it.

Why one module: the rules, the mutators, the clauses and (later) the HTTP API and CLI must agree
on one layout, so every key is spelled here and nowhere else. All functions are pure reads of a
``StateView``; none raises on an unknown id (it finds nothing).

Key layout (values are canonical JSON)::

    class/<name>                           an asset class (genesis, later council votes)
    token/<token>                          {"token", "name", "asset_class", "decimals", "supply", "kind"}
    bal/<token>/<account>                  {"total", "held"}: held is part of total
    lock/<token>/<account>                 {"amount", "until_height"}: not movable before that height
    frozen/<token>/<account>               {"reason", "by", "tx_id", "height", "time"}
    hold/<hold_id>                         a ``traco.core.holds.Hold`` as JSON, open or closed, forever
    hexp/h/<height:012d>/<hold_id>         {}: an open hold that is due at that height
    hexp/t/<bucket:012d>/<time:015d>/<id>  {}: an open hold due at that block time
    hexp/td/<bucket:012d>                  {"count"}: how many open holds are in that time bucket
    params/trc | params/coco | params/equity   the configuration from genesis
    trc/reserve                            the last valid attestation (see ``rules_trc``)
    trc/att/<seq:012d>/<custodian>         {"reserve", "as_of"}: one custodian's signature
    trc/pending                            {"amount"}: TRC redeemed whose fiat is not yet paid
    trc/redemption/<id>                    one redemption
    coco/pool                              {"amount"}: the incentive pool
    coco/epoch                             {"next", "paid"}: the next epoch to pay, Coco paid so far
    coco/paid/<epoch:08d>                  what one epoch paid
    equity/<token>                         an equity-anchored token's terms and custodied shares
    exercise/<exercise_id>                 one exercise (its hold and settlement)
    command/<command_id>                   a command trade sent and what became of it

Time buckets: a hold due at block time ``t`` is indexed under ``t // TIME_BUCKET_MS`` and the
bucket is listed in ``hexp/td/``, so the clause lists the non-empty buckets up to the block's
and reads only those (``due_holds``), never every hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import orjson

from traco.core.domain import StateView
from traco.core.holds import Hold

TIME_BUCKET_MS: Final = 3_600_000
"""One hour: coarse enough that a year of future expiries is at most 8,784 bucket entries."""


# --------------------------------------------------------------------------- keys


def class_key(name: str) -> str:
    return f"class/{name}"


def token_key(token: str) -> str:
    return f"token/{token}"


def balance_key(token: str, account: str) -> str:
    return f"bal/{token}/{account}"


def balance_prefix(token: str) -> str:
    return f"bal/{token}/"


def lock_key(token: str, account: str) -> str:
    return f"lock/{token}/{account}"


def frozen_key(token: str, account: str) -> str:
    return f"frozen/{token}/{account}"


def hold_key(hold_id: str) -> str:
    return f"hold/{hold_id}"


def expiry_height_prefix(height: int) -> str:
    return f"hexp/h/{height:012d}/"


def expiry_height_key(height: int, hold_id: str) -> str:
    return f"{expiry_height_prefix(height)}{hold_id}"


def time_bucket(time: int) -> int:
    return time // TIME_BUCKET_MS


def expiry_time_prefix(bucket: int) -> str:
    return f"hexp/t/{bucket:012d}/"


def expiry_time_key(time: int, hold_id: str) -> str:
    return f"{expiry_time_prefix(time_bucket(time))}{time:015d}/{hold_id}"


BUCKETS: Final = "hexp/td/"


def bucket_key(bucket: int) -> str:
    return f"{BUCKETS}{bucket:012d}"


def params_key(area: str) -> str:
    return f"params/{area}"


RESERVE: Final = "trc/reserve"
PENDING: Final = "trc/pending"


def attestation_prefix(seq: int) -> str:
    return f"trc/att/{seq:012d}/"


ATTESTATIONS: Final = "trc/att/"


def attestation_key(seq: int, custodian: str) -> str:
    return f"{attestation_prefix(seq)}{custodian}"


def redemption_key(redemption_id: str) -> str:
    return f"trc/redemption/{redemption_id}"


POOL: Final = "coco/pool"
EPOCH: Final = "coco/epoch"


def epoch_paid_key(epoch: int) -> str:
    return f"coco/paid/{epoch:08d}"


def equity_key(token: str) -> str:
    return f"equity/{token}"


def exercise_key(exercise_id: str) -> str:
    return f"exercise/{exercise_id}"


EXERCISE_HOLD: Final = "exercise:"


def exercise_hold_id(exercise_id: str) -> str:
    """The hold of an exercise: in the service's own id space (members' ids have no ``:``)."""
    return f"{EXERCISE_HOLD}{exercise_id}"


def exercise_of_hold(hold_id: str) -> str | None:
    """The exercise a hold belongs to, if it is an exercise hold."""
    return hold_id[len(EXERCISE_HOLD) :] if hold_id.startswith(EXERCISE_HOLD) else None


def command_key(command_id: str) -> str:
    return f"command/{command_id}"


# --------------------------------------------------------------------------- reads


def read(view: StateView, key: str) -> dict[str, Any] | None:
    raw = view.get(key)
    if raw is None:
        return None
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else None


def asset_class(view: StateView, name: str) -> dict[str, Any] | None:
    return read(view, class_key(name))


def asset_classes(view: StateView) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for _, raw in view.scan("class/")]


def token(view: StateView, token_id: str) -> dict[str, Any] | None:
    return read(view, token_key(token_id))


def tokens(view: StateView) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for _, raw in view.scan("token/")]


def balance(view: StateView, token_id: str, account: str) -> dict[str, int]:
    """``{"total", "held"}`` (zeros for an account that never held the token)."""
    record = read(view, balance_key(token_id, account))
    return {"total": 0, "held": 0} if record is None else {"total": record["total"], "held": record["held"]}


def lock(view: StateView, token_id: str, account: str) -> dict[str, Any] | None:
    return read(view, lock_key(token_id, account))


def locked(view: StateView, token_id: str, account: str, height: int) -> int:
    """The amount that may not move at ``height`` (0 from the lock's ``until_height`` on)."""
    record = lock(view, token_id, account)
    if record is None or height >= record["until_height"]:
        return 0
    return int(record["amount"])


def account(view: StateView, token_id: str, account_id: str, height: int) -> dict[str, int]:
    """What the API shows: total, held, locked and available (= total - held - locked, ≥ 0)."""
    bal = balance(view, token_id, account_id)
    lock_amount = locked(view, token_id, account_id, height)
    available = max(0, bal["total"] - bal["held"] - lock_amount)
    return {"total": bal["total"], "held": bal["held"], "locked": lock_amount, "available": available}


def holders(view: StateView, token_id: str) -> Iterator[tuple[str, dict[str, int]]]:
    """``(account, {"total", "held"})`` of every account with a record, in account order."""
    prefix = balance_prefix(token_id)
    for key, raw in view.scan(prefix):
        yield key[len(prefix) :], orjson.loads(raw)


def frozen(view: StateView, token_id: str, account_id: str) -> dict[str, Any] | None:
    return read(view, frozen_key(token_id, account_id))


def hold(view: StateView, hold_id: str) -> Hold | None:
    record = read(view, hold_key(hold_id))
    return None if record is None else Hold.from_json(record)


def due_holds(view: StateView, height: int, time: int) -> list[str]:
    """The ids of open holds due at this block: indexed at exactly ``height`` (the clause runs
    at every height, so earlier heights were drained) or at a time ``<= time``. Sorted."""
    due = {key.rsplit("/", 1)[1] for key, _ in view.scan(expiry_height_prefix(height))}
    last = time_bucket(time)
    for key, _ in view.scan(BUCKETS):
        bucket = int(key[len(BUCKETS) :])
        if bucket > last:
            break
        prefix = expiry_time_prefix(bucket)
        for entry, _ in view.scan(prefix):
            at, hold_id = entry[len(prefix) :].split("/", 1)
            if int(at) <= time:
                due.add(hold_id)
    return sorted(due)


def params(view: StateView, area: str) -> dict[str, Any] | None:
    return read(view, params_key(area))


def reserve(view: StateView) -> dict[str, Any] | None:
    return read(view, RESERVE)


def pending_redemptions(view: StateView) -> int:
    record = read(view, PENDING)
    return 0 if record is None else int(record["amount"])


def attestations(view: StateView, seq: int) -> dict[str, dict[str, Any]]:
    """Custodian -> ``{"reserve", "as_of"}`` signed for ``seq``."""
    prefix = attestation_prefix(seq)
    return {key[len(prefix) :]: orjson.loads(raw) for key, raw in view.scan(prefix)}


def redemption(view: StateView, redemption_id: str) -> dict[str, Any] | None:
    return read(view, redemption_key(redemption_id))


def pool(view: StateView) -> int:
    record = read(view, POOL)
    return 0 if record is None else int(record["amount"])


def epoch(view: StateView) -> dict[str, int]:
    record = read(view, EPOCH)
    return {"next": 0, "paid": 0} if record is None else {"next": record["next"], "paid": record["paid"]}


def epoch_paid(view: StateView, n: int) -> dict[str, Any] | None:
    return read(view, epoch_paid_key(n))


def equity(view: StateView, token_id: str) -> dict[str, Any] | None:
    return read(view, equity_key(token_id))


def exercise(view: StateView, exercise_id: str) -> dict[str, Any] | None:
    return read(view, exercise_key(exercise_id))


def command(view: StateView, command_id: str) -> dict[str, Any] | None:
    return read(view, command_key(command_id))
