"""RFC 9162 Merkle trees: hashing, proof generation from stored subtree hashes, and proof
verification.

Pure functions over bytes: no I/O, no clock. The registry builds its audit log with them (the
server side: appending leaves, computing roots and proofs from stored subtree hashes) and
clients verify with them (inclusion and consistency proofs).

Merkle trees (RFC 9162 §2.1, the same hashing as RFC 6962 and Certificate Transparency):

* leaf hash ``SHA-256(0x00 || leaf)``, interior node ``SHA-256(0x01 || left || right)``, the
  root of the empty tree ``SHA-256("")``; a tree of ``n`` leaves splits at the largest power of
  two smaller than ``n``;
* a *perfect subtree* ``(level, index)`` covers leaves ``[index * 2**level, (index + 1) *
  2**level)``. Proof generation only ever asks for perfect subtrees, so a server that stores
  them (about two per leaf) answers any proof with O(log n) look-ups;
* :func:`verify_inclusion` and :func:`verify_consistency` follow RFC 9162 §2.1.3.2 and
  §2.1.4.2 step by step and raise :class:`ProofError` on any mismatch (wrong size, index, hash,
  length, extra or missing hashes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ..errors import InputError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "ProofError",
    "SubtreeGetter",
    "TransparencyError",
    "append_leaf",
    "consistency_proof",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "root_from_frontier",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]


HASH_SIZE = 32
#: The root hash of the tree with no leaves: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Proofs longer than this are refused before any hashing (a tree of 2**63 leaves needs fewer).
MAX_PROOF_HASHES = 130
#: The largest tree size a checkpoint may state (sizes are unsigned 64-bit in C2SP).
MAX_TREE_SIZE = 2**63 - 1

#: ``get(level, index)`` → the hash of the perfect subtree ``(level, index)``.
SubtreeGetter = Callable[[int, int], bytes]


class TransparencyError(InputError):
    """A transparency-log artifact (proof, note, key, checkpoint) is malformed or does not
    verify."""


class ProofError(TransparencyError):
    """A Merkle inclusion or consistency proof does not verify."""


# ----------------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def append_leaf(frontier: Sequence[bytes], size: int,
                leaf: bytes) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append the leaf hash ``leaf`` to a tree of ``size`` leaves.

    ``frontier`` is the tree's compact range: the hashes of its maximal perfect subtrees, left
    to right (one per set bit of ``size``, largest first). Returns the new frontier and every
    perfect subtree ``(level, index, hash)`` completed by this leaf (the leaf itself first).
    """
    if len(frontier) != size.bit_count():
        raise ValueError(f"a frontier of a {size}-leaf tree has {size.bit_count()} hashes, "
                         f"not {len(frontier)}")
    hashes = list(frontier)
    created = [(0, size, leaf)]
    h, index, level = leaf, size, 0
    while index & 1:
        h = node_hash(hashes.pop(), h)
        index >>= 1
        level += 1
        created.append((level, index, h))
    hashes.append(h)
    return hashes, created


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root hash of the tree whose compact range is ``frontier`` (see :func:`append_leaf`)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for h in reversed(frontier[:-1]):
        root = node_hash(h, root)
    return root


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH of the tree whose leaves have these hashes (``EMPTY_ROOT`` if none)."""
    frontier: list[bytes] = []
    for size, h in enumerate(leaf_hashes):
        frontier, _ = append_leaf(frontier, size, h)
    return root_from_frontier(frontier)


# ------------------------------------------------------------------------- proof generation


def _range_hash(get: SubtreeGetter, start: int, end: int) -> bytes:
    # Every range the RFC recursion reaches starts at a multiple of the power of two above its
    # length, so its left part is always a perfect, aligned subtree.
    n = end - start
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return get(level, start >> level)
    k = _split(n)
    return node_hash(_range_hash(get, start, start + k), _range_hash(get, start + k, end))


def _path(get: SubtreeGetter, index: int, start: int, end: int) -> list[bytes]:
    # RFC 6962 §2.1.1 PATH(m, D[start:end]), with absolute leaf positions.
    if end - start == 1:
        return []
    k = _split(end - start)
    if index < start + k:
        return [*_path(get, index, start, start + k), _range_hash(get, start + k, end)]
    return [*_path(get, index, start + k, end), _range_hash(get, start, start + k)]


def _subproof(get: SubtreeGetter, first: int, start: int, end: int, complete: bool) -> list[bytes]:
    # RFC 6962 §2.1.2 SUBPROOF(m, D[start:end], b), with absolute positions.
    if first == end:
        return [] if complete else [_range_hash(get, start, end)]
    k = _split(end - start)
    if first <= start + k:
        return [*_subproof(get, first, start, start + k, complete), _range_hash(get, start + k, end)]
    return [*_subproof(get, first, start + k, end, False), _range_hash(get, start, start + k)]


def inclusion_proof(index: int, size: int, get: SubtreeGetter) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves, built
    from perfect subtree hashes (``get``). Raises ValueError unless ``0 <= index < size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    return _path(get, index, 0, size)


def consistency_proof(first: int, second: int, get: SubtreeGetter) -> list[bytes]:
    """The consistency proof from the tree of ``first`` leaves to the tree of ``second``
    leaves (empty when ``first`` is 0 or equal to ``second``). Raises ValueError unless
    ``0 <= first <= second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    return _subproof(get, first, 0, second, True)


def _nodes_of(build: Callable[[SubtreeGetter], object]) -> list[tuple[int, int]]:
    # The recursion's shape depends only on the sizes, never on hash values: record which
    # subtrees it asks for, so a server can fetch them all in one query first.
    wanted: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        wanted.append((level, index))
        return EMPTY_ROOT

    build(record)
    return sorted(set(wanted))


def inclusion_proof_nodes(index: int, size: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that :func:`inclusion_proof` reads."""
    return _nodes_of(lambda get: inclusion_proof(index, size, get))


def consistency_proof_nodes(first: int, second: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that :func:`consistency_proof` reads."""
    return _nodes_of(lambda get: consistency_proof(first, second, get))


# --------------------------------------------------------------------------- verification


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(*, index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Check that the leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` leaves whose
    root hash is ``root`` (RFC 9162 §2.1.3.2). Raises :class:`ProofError` otherwise."""
    _check_hash(leaf, "the leaf hash")
    _check_hash(root, "the root hash")
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError("the inclusion proof is too long")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        _check_hash(p, "a proof element")
        if sn == 0:
            raise ProofError("the inclusion proof has more hashes than the tree has levels")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof has fewer hashes than the tree has levels")
    if r != root:
        raise ProofError(f"leaf {index} is not included in the tree of size {size} with this root")


def verify_consistency(*, first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the tree of ``second`` leaves with root ``second_root`` extends the tree of
    ``first`` leaves with root ``first_root`` (RFC 9162 §2.1.4.2): the first ``first`` leaves
    are unchanged. Raises :class:`ProofError` otherwise (including ``first > second``)."""
    _check_hash(first_root, "the first root hash")
    _check_hash(second_root, "the second root hash")
    if not 0 <= first <= second:
        raise ProofError(f"a tree of {second} leaves cannot extend a tree of {first} leaves")
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError("the consistency proof is too long")
    if first == second:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError(f"two different trees of size {first}")
        return
    if first == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    for p in path:
        _check_hash(p, "a proof element")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof has more hashes than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof has fewer hashes than the trees need")
    if fr != first_root or sr != second_root:
        raise ProofError(f"the tree of size {second} does not extend the tree of size {first} "
                         "with this root")
