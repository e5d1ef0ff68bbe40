import pytest

from licensing.keys import ALPHABET, MalformedKeyError, key_digest, key_generate, key_normalize


def test_a_new_key_has_the_documented_shape_and_its_own_check_character():
    key = key_generate()
    prefix, *groups = key.split("-")
    assert prefix == "QT"
    assert [len(group) for group in groups] == [4] * 6
    assert key_normalize(key) == key


def test_every_single_mistyped_character_is_refused():
    key = key_generate()
    for position, symbol in enumerate(key):
        if symbol == "-" or position < 3:
            continue
        for other in ALPHABET:
            if other == symbol:
                continue
            typo = key[:position] + other + key[position + 1 :]
            with pytest.raises(MalformedKeyError):
                key_normalize(typo)


def test_lower_case_spaces_and_crockford_look_alikes_are_read_as_the_same_key():
    key = key_generate()
    typed = key.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert key_normalize(typed) == key


@pytest.mark.parametrize("raw", ["", "QT-1234", "XX-" + "0000-" * 5 + "0000", "QT-" + "U" * 24])
def test_things_that_are_not_keys_are_refused(raw):
    with pytest.raises(MalformedKeyError):
        key_normalize(raw)


def test_the_digest_depends_on_the_pepper(settings):
    key = key_generate()
    first = key_digest(key)
    settings.LICENSE_KEY_PEPPER = "another pepper"
    assert key_digest(key) != first
