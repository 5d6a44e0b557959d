"""The compiled apply of ``core/smt_tree.py`` (``core/_smt_native.c``)."""

from collections.abc import Callable

Position = tuple[int, int]
Reader = Callable[[bytes, Position], bytes]

def apply(
    root: bytes,
    paths: list[bytes],
    leaves: list[tuple[bytes, bytes, bytes]],
    known: dict[bytes, bytes],
    read: Reader,
    corrupt: type[Exception],
    /,
) -> tuple[bytes, dict[bytes, bytes], list[bytes], dict[Position, bytes], dict[Position, bytes]]: ...
def apply_paged(
    root: bytes,
    paths: list[bytes],
    leaves: list[tuple[bytes, bytes, bytes]],
    known: dict[bytes, bytes],
    read: Reader,
    corrupt: type[Exception],
    get: Callable[[str], bytes | None],
    key_prefix: str,
    damaged: Callable[[str, bytes], object],
    missing: type[Exception],
    /,
) -> tuple[bytes, dict[bytes, bytes], dict[str, bytes | None], dict[str, bytes | None]]: ...
def entries(changes: dict[str, bytes | None], /) -> tuple[list[bytes], list[tuple[bytes, bytes, bytes]]]: ...
def position(depth: int, path: bytes, last: int, /) -> Position: ...
