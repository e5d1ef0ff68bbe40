"""The keyring: AES-256-GCM with key ids, values bound to their row, named errors, and where
the keys come from."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from delivery import crypto
from delivery.crypto import (
    DecryptionError,
    UnknownKeyError,
    decrypt,
    encrypt,
    get_keyring,
    key_id_of,
    load_or_create_key_file,
    open_with_token,
    parse_keys,
    seal_with_token,
)

from .conftest import KEY1, KEY2

ROOT = Path(__file__).resolve().parents[2]


def test_a_value_round_trips_and_its_envelope_names_the_version_and_key_id():
    envelope = encrypt("hunter2-password", aad="demo.account.password:7")

    assert envelope.startswith("enc:v1:k1:")
    assert "hunter2" not in envelope
    assert key_id_of(envelope) == "k1"
    assert decrypt(envelope, aad="demo.account.password:7") == "hunter2-password"


def test_the_same_value_encrypts_differently_every_time():
    assert encrypt("same", aad="x:1") != encrypt("same", aad="x:1")


def test_a_value_bound_to_one_row_does_not_decrypt_as_another_row():
    envelope = encrypt("secret", aad="demo.account.password:7")

    with pytest.raises(DecryptionError, match="another row"):
        decrypt(envelope, aad="demo.account.password:8")


@pytest.mark.parametrize("position", [12, 20, -3])
def test_a_tampered_value_raises_instead_of_returning_garbage(position):
    envelope = encrypt("secret", aad="x:1")
    flipped = "A" if envelope[position] != "A" else "B"
    tampered = envelope[:position] + flipped + envelope[position + 1 :]

    with pytest.raises(DecryptionError):
        decrypt(tampered, aad="x:1")


def test_a_value_whose_key_id_was_relabelled_does_not_decrypt(settings):
    settings.ENCRYPTION_KEYS = f"k2:{KEY1.split(':')[1]},{KEY1}"  # one key under two ids
    envelope = encrypt("secret", aad="x:1")

    relabelled = envelope.replace("enc:v1:k2:", "enc:v1:k1:")
    with pytest.raises(DecryptionError):
        decrypt(relabelled, aad="x:1")


def test_a_value_under_a_key_that_is_not_configured_names_the_key_id(settings):
    envelope = encrypt("secret", aad="x:1")  # under k1
    settings.ENCRYPTION_KEYS = KEY2

    with pytest.raises(UnknownKeyError, match="key id 'k1'") as caught:
        decrypt(envelope, aad="x:1")
    assert caught.value.key_id == "k1"


def test_the_newest_key_encrypts_and_older_ones_still_decrypt(settings):
    old = encrypt("old value", aad="x:1")
    settings.ENCRYPTION_KEYS = f"{KEY2},{KEY1}"

    new = encrypt("new value", aad="x:1")

    assert get_keyring().key_ids == ("k2", "k1")
    assert key_id_of(new) == "k2"
    assert decrypt(old, aad="x:1") == "old value"
    assert decrypt(new, aad="x:1") == "new value"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "no key"),
        ("just-base64-no-id", "kid:base64key"),
        ("k1:not base64!", "not 32 bytes"),
        ("k1:" + "A" * 22, "not 32 bytes"),  # 16 bytes: AES-128
        (f"{KEY1},{KEY1}", "appears twice"),
        ("bad id:" + KEY1.split(":")[1], "kid:base64key"),
    ],
)
def test_malformed_keys_are_refused_with_a_clear_message(value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_keys(value)


def test_keys_may_be_urlsafe_base64_without_padding_and_on_separate_lines():
    urlsafe = KEY2.split(":")[1].replace("+", "-").replace("/", "_").rstrip("=")

    keyring = parse_keys(f"# a comment, with a comma\nk2:{urlsafe}\n{KEY1}\n")

    assert keyring.key_ids == ("k2", "k1")
    assert len(keyring.key("k2")) == 32


def test_the_embedded_default_makes_a_private_key_file_once_and_says_so(tmp_path, caplog):
    path = tmp_path / "var" / "encryption.keys"

    with caplog.at_level("WARNING", logger="delivery.crypto"):
        first = load_or_create_key_file(path)
    second = load_or_create_key_file(path)

    assert first == second == path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_keys(first).key_ids == ("local1",)
    assert [r.getMessage() for r in caplog.records if "generated" in r.getMessage()] == [
        f"No ENCRYPTION_KEYS set: generated a local encryption key file at {path} (mode 0600). "
        "Fine for development; production sets ENCRYPTION_KEYS."
    ]
    assert parse_keys(first).key("local1").hex() not in caplog.text


def test_without_ENCRYPTION_KEYS_the_keyring_comes_from_the_local_key_file(settings, tmp_path):
    settings.ENCRYPTION_KEYS = ""
    settings.ENCRYPTION_KEY_FILE = str(tmp_path / "encryption.keys")

    envelope = encrypt("dev secret", aad="x:1")

    assert key_id_of(envelope) == "local1"
    assert (tmp_path / "encryption.keys").exists()
    assert decrypt(envelope, aad="x:1") == "dev secret"


def test_a_key_file_made_by_a_concurrent_process_wins(tmp_path, monkeypatch):
    path = tmp_path / "encryption.keys"
    real_link = os.link

    def someone_else_first(src, dst):
        path.write_text(f"{KEY2}\n")
        real_link(src, dst)  # raises FileExistsError, like a lost race

    monkeypatch.setattr(crypto.os, "link", someone_else_first)

    assert load_or_create_key_file(path) == f"{KEY2}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encryption.keys"]


def test_production_refuses_to_start_without_keys():
    # Set, empty: a developer's .env (read without overwriting) cannot fill it in. Whatever
    # else production requires (other apps' secrets) gets a dummy, until ours is the refusal.
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "x" * 50, "ENCRYPTION_KEYS": ""}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    for _ in range(10):
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        other = re.search(r"ImproperlyConfigured: (\w+) must be set", result.stderr)
        if other is None or other[1] == "ENCRYPTION_KEYS":
            break
        env[other[1]] = "dummy-" + "y" * 40

    assert result.returncode != 0
    assert "ImproperlyConfigured: ENCRYPTION_KEYS must be set when DEBUG is off" in result.stderr


def test_a_token_sealed_payload_opens_only_with_that_token_and_binding():
    token = "T" * 43
    sealed = seal_with_token(b'{"password":"x"}', token=token, aad="delivery.payload:abc")

    assert open_with_token(sealed, token=token, aad="delivery.payload:abc") == b'{"password":"x"}'
    with pytest.raises(DecryptionError):
        open_with_token(sealed, token="U" * 43, aad="delivery.payload:abc")
    with pytest.raises(DecryptionError):
        open_with_token(sealed, token=token, aad="delivery.payload:other")


def test_generate_encryption_key_prints_an_entry_the_keyring_accepts(capsys):
    call_command("generate_encryption_key", kid="k2026")

    entry = capsys.readouterr().out.strip()
    assert entry.startswith("k2026:")
    assert parse_keys(entry).key_ids == ("k2026",)
