"""Entry signatures: keys on disk, the trust registry, and what verifies and what does not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from resonetics.raft.entry import GENESIS, EntryType, make_entry
from resonetics.security.signing import (
    NODE_KEY_FILE,
    EntrySignature,
    SignatureCheck,
    SigningError,
    TrustRegistry,
    load_or_create_node_key,
    public_key_text,
    registry_from_node_dirs,
    sign_entry_hash,
    signed_message,
)

KEY_N1 = Ed25519PrivateKey.generate()
KEY_N2 = Ed25519PrivateKey.generate()
REGISTRY = TrustRegistry({"n1": KEY_N1.public_key(), "n2": KEY_N2.public_key()})
ENTRY = make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, {"op": "kv_set", "k": "a", "v": 1})


def test_a_leader_signature_over_the_chain_hash_verifies() -> None:
    signature = sign_entry_hash(KEY_N1, "n1", ENTRY.hash)
    assert REGISTRY.verify(ENTRY.hash, signature) is SignatureCheck.VALID
    assert len(bytes.fromhex(signature.sig)) == 64


def test_signature_is_not_part_of_the_hash_input() -> None:
    again = make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, ENTRY.data)
    sign_entry_hash(KEY_N1, "n1", ENTRY.hash)
    assert again.hash == ENTRY.hash  # signing changes nothing the chain covers


def test_a_different_entry_does_not_verify_under_the_same_signature() -> None:
    signature = sign_entry_hash(KEY_N1, "n1", ENTRY.hash)
    tampered = make_entry(
        GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, {"op": "kv_set", "k": "a", "v": 2}
    )
    assert REGISTRY.verify(tampered.hash, signature) is SignatureCheck.BAD_SIGNATURE


def test_claiming_another_author_fails() -> None:
    forged = EntrySignature("n2", sign_entry_hash(KEY_N1, "n1", ENTRY.hash).sig)
    assert REGISTRY.verify(ENTRY.hash, forged) is SignatureCheck.BAD_SIGNATURE


def test_unknown_author_and_unsigned_entries_are_named() -> None:
    stranger = Ed25519PrivateKey.generate()
    assert REGISTRY.verify(ENTRY.hash, sign_entry_hash(stranger, "n9", ENTRY.hash)) is (
        SignatureCheck.UNKNOWN_AUTHOR
    )
    assert REGISTRY.verify(ENTRY.hash, None) is SignatureCheck.UNSIGNED


@pytest.mark.parametrize("sig", ["zz", "00" * 63, "00" * 65, ""])
def test_malformed_signatures_are_bad_not_errors(sig: str) -> None:
    assert REGISTRY.verify(ENTRY.hash, EntrySignature("n1", sig)) is SignatureCheck.BAD_SIGNATURE


def test_signed_message_is_domain_separated() -> None:
    assert signed_message(ENTRY.hash).startswith(b"resonetics/entry-signature/v1\n")
    assert signed_message(ENTRY.hash).endswith(ENTRY.hash.encode())


@given(st.binary(min_size=32, max_size=32))
def test_any_hash_round_trips(raw: bytes) -> None:
    entry_hash = raw.hex()
    assert REGISTRY.verify(entry_hash, sign_entry_hash(KEY_N2, "n2", entry_hash)) is (
        SignatureCheck.VALID
    )


def test_node_key_is_made_once_with_owner_only_permissions(tmp_path: Path) -> None:
    key = load_or_create_node_key(tmp_path / "n1")
    path = tmp_path / "n1" / NODE_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_or_create_node_key(tmp_path / "n1")
    assert public_key_text(again) == public_key_text(key)


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_or_create_node_key(tmp_path)
    os.chmod(tmp_path / NODE_KEY_FILE, 0o644)
    with pytest.raises(SigningError, match="chmod 600"):
        load_or_create_node_key(tmp_path)


def test_an_explicit_key_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="not found"):
        load_or_create_node_key(tmp_path, tmp_path / "given.key")


def test_a_non_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / NODE_KEY_FILE
    path.write_text("hello")
    path.chmod(0o600)
    with pytest.raises(SigningError, match="not a PEM private key"):
        load_or_create_node_key(tmp_path)


def test_registry_round_trips_through_toml_and_json(tmp_path: Path) -> None:
    registry = registry_from_node_dirs({"n1": tmp_path / "n1", "n2": tmp_path / "n2"})
    toml_path = tmp_path / "trust.toml"
    toml_path.write_text(registry.to_toml())
    loaded = TrustRegistry.load(toml_path)
    assert loaded.node_ids == ["n1", "n2"]
    key = load_or_create_node_key(tmp_path / "n1")
    assert loaded.verify(ENTRY.hash, sign_entry_hash(key, "n1", ENTRY.hash)) is SignatureCheck.VALID
    json_path = tmp_path / "trust.json"
    json_path.write_text(json.dumps({"n1": public_key_text(key)}))
    assert TrustRegistry.load(json_path).node_ids == ["n1"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[nodes]\nn1 = "rsa:abc"\n', "ed25519:"),
        ('[nodes]\nn1 = "ed25519:!!!"\n', "not base64"),
        ('[nodes]\nn1 = "ed25519:AAAA"\n', "32 bytes"),
        ("[nodes]\nn1 = 3\n", "must map node ids"),
        ("not toml [", "not valid"),
    ],
)
def test_bad_registries_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "trust.toml"
    path.write_text(text)
    with pytest.raises(SigningError, match=match):
        TrustRegistry.load(path)
