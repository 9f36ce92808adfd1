"""Merkle trees, signed notes and checkpoints (cortex_trust.sources) against published
test vectors and as properties.

Vectors: the RFC 6962 test tree of Certificate Transparency (the 8 leaves, roots, inclusion and
consistency proofs of transparency-dev/merkle ``proof/verify_test.go``) and the signed-note
example of Go's ``golang.org/x/mod/sumdb/note`` (the PeterNeumann key and note).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_trust.sources import (
    EMPTY_ROOT,
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    ProofError,
    append_leaf,
    consistency_proof,
    consistency_proof_nodes,
    generate_note_key,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    root_from_frontier,
    root_hash,
    sign_note,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAVES = [h(""), h("00"), h("10"), h("2021"), h("3031"), h("40414243"), h("5051525354555657"),
          h("606162636465666768696a6b6c6d6e6f")]
#: ROOTS[n - 1] is the root of the tree of the first n leaves.
ROOTS = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
#: (leaf index, tree size, proof)
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
#: (first size, second size, proof)
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


class Tree:
    """A tree built only through append_leaf, with every perfect subtree it reported."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.frontier: list[bytes] = []
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.leaf_hashes = [leaf_hash(x) for x in leaves]
        self.roots: list[bytes] = [EMPTY_ROOT]
        for size, lh in enumerate(self.leaf_hashes):
            self.frontier, created = append_leaf(self.frontier, size, lh)
            for level, index, value in created:
                assert (level, index) not in self.nodes
                self.nodes[(level, index)] = value
            self.roots.append(root_from_frontier(self.frontier))

    def get(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


VECTOR_TREE = Tree(LEAVES)


def _mth(leaf_hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH written out recursively: the reference the fast paths are held to."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(_mth(leaf_hashes[:k]), _mth(leaf_hashes[k:]))


# ------------------------------------------------------------------------------- vectors


def test_roots_match_the_ct_test_tree() -> None:
    assert root_hash([]) == EMPTY_ROOT == h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    for n in range(1, 9):
        assert root_hash(VECTOR_TREE.leaf_hashes[:n]) == ROOTS[n - 1]
        assert VECTOR_TREE.roots[n] == ROOTS[n - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors_are_generated_and_verify(index: int, size: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert inclusion_proof(index, size, VECTOR_TREE.get) == expected
    verify_inclusion(index=index, size=size, leaf=leaf_hash(LEAVES[index]), proof=expected,
                     root=ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_vectors_are_generated_and_verify(first: int, second: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert consistency_proof(first, second, VECTOR_TREE.get) == expected
    verify_consistency(first=first, second=second, first_root=ROOTS[first - 1],
                       second_root=ROOTS[second - 1], proof=expected)


def _inclusion_probes(index: int, size: int, proof: list[bytes], root: bytes,
                      leaf: bytes) -> list[tuple[int, int, bytes, list[bytes], bytes, str]]:
    """The corruptions transparency-dev's verifier tests try (each must be refused)."""
    probes = [
        (index - 1, size, leaf, proof, root, "index - 1"),
        (index + 1, size, leaf, proof, root, "index + 1"),
        (index ^ 2, size, leaf, proof, root, "index ^ 2"),
        (index, size * 2, leaf, proof, root, "size * 2"),
        (index, size // 2, leaf, proof, root, "size / 2"),
        (index, size, leaf_hash(b"WrongLeaf"), proof, root, "wrong leaf"),
        (index, size, leaf, proof, EMPTY_ROOT, "empty root"),
        (index, size, leaf, proof, SOME_HASH, "random root"),
        (index, size, leaf, [*proof, b""], root, "trailing garbage"),
        (index, size, leaf, [*proof, root], root, "trailing root"),
        (index, size, leaf, [b"", *proof], root, "preceding garbage"),
        (index, size, leaf, [root, *proof], root, "preceding root"),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((index, size, leaf, wrong, root, f"proof[{i}] bit 3"))
    if proof:
        probes.append((index, size, leaf, proof[:-1], root, "removed component"))
    if len(proof) > 1:
        probes.append((index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root,
                       "inserted component"))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_are_refused(index: int, size: int, proof: list[str]) -> None:
    good = [h(p) for p in proof]
    for i, s, leaf, p, root, desc in _inclusion_probes(index, size, good, ROOTS[size - 1],
                                                       leaf_hash(LEAVES[index])):
        with pytest.raises(ProofError):
            verify_inclusion(index=i, size=s, leaf=leaf, proof=p, root=root)
            pytest.fail(f"accepted: {desc}")


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_corrupted_consistency_proofs_are_refused(first: int, second: int, proof: list[str]) -> None:
    good = [h(p) for p in proof]
    r1, r2 = ROOTS[first - 1], ROOTS[second - 1]
    probes = [
        (first - 1, second, r1, r2, good), (first + 1, second, r1, r2, good),
        (first ^ 2, second, r1, r2, good), (first, second * 2, r1, r2, good),
        (first, second // 2, r1, r2, good), (first, second, SOME_HASH, r2, good),
        (first, second, r1, SOME_HASH, good), (first, second, r2, r1, good),
        (first, second, r1, r2, []), (first, second, r1, r2, [*good, b""]),
        (first, second, r1, r2, [*good, r1]), (first, second, r1, r2, [*good, r2]),
        (first, second, r1, r2, [b"", *good]), (first, second, r1, r2, [r1, *good]),
        (first, second, r1, r2, [r2, *good]), (first, second, r1, r2, [good[0], *good]),
        (first, second, r1, r2, good[:-1]),
    ]
    for i in range(len(good)):
        wrong = list(good)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((first, second, r1, r2, wrong))
    for m, n, a, b, p in probes:
        with pytest.raises(ProofError):
            verify_consistency(first=m, second=n, first_root=a, second_root=b, proof=p)
            pytest.fail(f"accepted a corrupted proof {m}->{n}")


def test_trivial_consistency_cases() -> None:
    r1, r2 = SOME_HASH, EMPTY_ROOT
    verify_consistency(first=0, second=0, first_root=r1, second_root=r1, proof=[])
    verify_consistency(first=0, second=1, first_root=r1, second_root=r2, proof=[])
    verify_consistency(first=1, second=1, first_root=r2, second_root=r2, proof=[])
    for m, n, a, b, p in [(0, 0, r1, r2, []), (1, 1, r1, r2, []), (1, 0, r1, r2, []),
                          (2, 1, r1, r2, []), (1, 2, r1, r2, []),
                          (0, 0, r2, r2, [r2]), (0, 1, r2, r2, [r2]), (1, 1, r2, r2, [r2])]:
        with pytest.raises(ProofError):
            verify_consistency(first=m, second=n, first_root=a, second_root=b, proof=p)


def test_inclusion_needs_an_index_inside_the_tree() -> None:
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(index=index, size=size, leaf=SOME_HASH, proof=[], root=SOME_HASH)
    one = leaf_hash(b"data")
    verify_inclusion(index=0, size=1, leaf=one, proof=[], root=one)
    with pytest.raises(ProofError):
        verify_inclusion(index=0, size=1, leaf=one, proof=[], root=b"")
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(3, 3, VECTOR_TREE.get)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(4, 3, VECTOR_TREE.get)


# ---------------------------------------------------------------------------- properties

_leaves = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(leaves=_leaves)
def test_append_leaf_frontier_matches_the_recursive_definition(leaves: list[bytes]) -> None:
    tree = Tree(leaves)
    for n in range(len(leaves) + 1):
        assert tree.roots[n] == _mth(tree.leaf_hashes[:n]) == root_hash(tree.leaf_hashes[:n])
    # Every perfect subtree the appends reported is the MTH of the leaves it covers.
    for (level, index), value in tree.nodes.items():
        assert value == _mth(tree.leaf_hashes[index << level:(index + 1) << level])


@settings(max_examples=40, deadline=None)
@given(leaves=_leaves)
def test_every_inclusion_proof_verifies_for_every_index_and_size(leaves: list[bytes]) -> None:
    tree = Tree(leaves)
    for size in range(1, len(leaves) + 1):
        for index in range(size):
            proof = inclusion_proof(index, size, tree.get)
            assert set(inclusion_proof_nodes(index, size)) <= set(tree.nodes)
            verify_inclusion(index=index, size=size, leaf=tree.leaf_hashes[index], proof=proof,
                             root=tree.roots[size])


@settings(max_examples=40, deadline=None)
@given(leaves=_leaves)
def test_consistency_between_any_two_sizes_verifies(leaves: list[bytes]) -> None:
    tree = Tree(leaves)
    for second in range(len(leaves) + 1):
        for first in range(second + 1):
            proof = consistency_proof(first, second, tree.get)
            assert set(consistency_proof_nodes(first, second)) <= set(tree.nodes)
            verify_consistency(first=first, second=second, first_root=tree.roots[first],
                               second_root=tree.roots[second], proof=proof)


@settings(max_examples=150, deadline=None)
@given(leaves=_leaves, data=st.data())
def test_any_tampered_inclusion_proof_fails(leaves: list[bytes], data: st.DataObject) -> None:
    tree = Tree(leaves)
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, tree.get)
    leaf, root = tree.leaf_hashes[index], tree.roots[size]
    kind = data.draw(st.sampled_from(["bit", "index", "size", "drop", "add", "leaf", "root"]))
    if kind == "bit" and proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        proof[i] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(proof[i]))
    elif kind == "index":
        other = data.draw(st.integers(0, size).filter(lambda x: x != index))
        # Another leaf with the same hash would be a genuine inclusion.
        if other < size and tree.leaf_hashes[other] == leaf:
            return
        index = other
    elif kind == "size":
        # A size is only ever checked together with its own root (a signed checkpoint states
        # both): the proof for one size must not verify against another size's tree.
        if len(leaves) == index + 1:
            return
        other = data.draw(st.integers(index + 1, len(leaves)).filter(lambda x: x != size))
        if inclusion_proof(index, other, tree.get) == proof:
            return  # the same path in both trees: the same statement
        size, root = other, tree.roots[other]
    elif kind == "drop" and proof:
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif kind == "add":
        proof.insert(data.draw(st.integers(0, len(proof))), data.draw(st.binary(min_size=32, max_size=32)))
    elif kind == "leaf":
        leaf = data.draw(st.binary(min_size=32, max_size=32).filter(lambda x: x != leaf))
    elif kind == "root":
        root = data.draw(st.binary(min_size=32, max_size=32).filter(lambda x: x != root))
    else:
        return  # an empty proof has no element to flip or drop
    with pytest.raises(ProofError):
        verify_inclusion(index=index, size=size, leaf=leaf, proof=proof, root=root)


@settings(max_examples=150, deadline=None)
@given(leaves=_leaves, data=st.data())
def test_wrong_sizes_and_rewritten_histories_fail_consistency(leaves: list[bytes],
                                                              data: st.DataObject) -> None:
    tree = Tree(leaves)
    second = data.draw(st.integers(1, len(leaves)))
    first = data.draw(st.integers(1, second))
    proof = consistency_proof(first, second, tree.get)
    # A rewritten history: one leaf among the first `first` changed, the rest appended again.
    victim = data.draw(st.integers(0, first - 1))
    forged = list(leaves)
    forged[victim] = forged[victim] + b"!"
    other = Tree(forged[:second])
    forged_proof = consistency_proof(first, second, other.get)
    with pytest.raises(ProofError):
        verify_consistency(first=first, second=second, first_root=tree.roots[first],
                           second_root=other.roots[second], proof=forged_proof)
    if first == second:
        return
    # Sizes are only ever checked with their own roots (a signed checkpoint states both): the
    # proof for (first, second) must not verify for another pair of sizes of the same tree.
    m = data.draw(st.integers(1, len(leaves)))
    n = data.draw(st.integers(m, len(leaves)))
    if (m, n) == (first, second) or consistency_proof(m, n, tree.get) == proof:
        return
    with pytest.raises(ProofError):
        verify_consistency(first=m, second=n, first_root=tree.roots[m],
                           second_root=tree.roots[n], proof=proof)


# --------------------------------------------------------------------------- signed notes

GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = (GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
           "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def test_notes_match_gos_reference_example_byte_for_byte() -> None:
    signer = NoteSigner.from_text(GO_SKEY)
    assert signer.verifier.text == GO_VKEY
    assert signer.text == GO_SKEY
    assert sign_note(GO_TEXT, signer) == GO_NOTE  # Ed25519 is deterministic
    assert open_note(GO_NOTE, NoteVerifier.from_text(GO_VKEY)) == GO_TEXT
    assert "AYEKFA" not in repr(signer)


def test_mangled_verifier_keys_are_refused() -> None:
    b = GO_VKEY.encode()
    for i in range(len(b)):
        mangled = b[:i] + bytes([b[i] + 1]) + b[i + 1:]
        try:
            text = mangled.decode()
        except UnicodeDecodeError:
            continue
        with pytest.raises(NoteError):
            NoteVerifier.from_text(text)
    for bad in ("", GO_VKEY[:-4], "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"):
        with pytest.raises(NoteError):
            NoteVerifier.from_text(bad)


def test_altered_or_foreign_notes_are_refused() -> None:
    verifier = NoteVerifier.from_text(GO_VKEY)
    other = generate_note_key("PeterNeumann")
    for bad in (GO_NOTE.replace("cryptography", "cryptographY"),       # altered text
                GO_TEXT + "\n",                                          # no signature
                GO_NOTE.replace("\u2014", "--"),                         # malformed line
                sign_note(GO_TEXT, other),                               # same name, other key
                GO_NOTE[:-1],                                            # no final newline
                GO_NOTE.replace("x08go/", "x08gp/")):                   # altered signature
        with pytest.raises(NoteError):
            open_note(bad, verifier)
    # Signatures by unknown keys are ignored, one good one suffices.
    both = sign_note(GO_TEXT, other).rstrip("\n") + "\n" + GO_NOTE.split("\n\n")[1]
    assert open_note(both, verifier) == GO_TEXT
    with pytest.raises(NoteError):
        sign_note("two\n\nparagraphs\n", other)


def test_checkpoints_round_trip_and_bind_origin_and_key() -> None:
    key = generate_note_key("registry.example.org/audit")
    cp = Checkpoint(origin=key.name, size=8, root=ROOTS[7])
    note = cp.sign(key)
    assert note.startswith(f"registry.example.org/audit\n8\n{base64.b64encode(ROOTS[7]).decode()}\n\n\u2014 ")
    assert open_checkpoint(note, key.verifier) == cp
    assert parse_checkpoint(cp.text) == cp
    stranger = generate_note_key("registry.example.org/audit")
    with pytest.raises(NoteError):
        open_checkpoint(note, stranger.verifier)
    # A checkpoint of another log signed with this key is refused by origin.
    with pytest.raises(NoteError, match="for log"):
        open_checkpoint(Checkpoint(origin="elsewhere", size=1, root=ROOTS[0]).sign(key), key.verifier)
    for body in ("o\n-1\nAAAA\n", "o\n01\n" + base64.b64encode(ROOTS[0]).decode() + "\n",
                 "o\n1\nAAAA\n", "o\n1\n", " o\n1\n" + base64.b64encode(ROOTS[0]).decode() + "\n"):
        with pytest.raises(NoteError):
            parse_checkpoint(body)
    assert NoteSigner.from_text(key.text) == key
    with pytest.raises(NoteError):
        NoteSigner.from_text(key.text.replace(key.key_id.hex(), "00000000"))


def test_every_proof_of_a_40_leaf_tree_verifies() -> None:
    tree = Tree([i.to_bytes(2, "big") for i in range(40)])
    for n in range(41):
        for m in range(n + 1):
            verify_consistency(first=m, second=n, first_root=tree.roots[m],
                               second_root=tree.roots[n], proof=consistency_proof(m, n, tree.get))
        for i in range(n):
            verify_inclusion(index=i, size=n, leaf=tree.leaf_hashes[i],
                             proof=inclusion_proof(i, n, tree.get), root=tree.roots[n])
