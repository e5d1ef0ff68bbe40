"""A lost answer must not strand a press pass: `POST demo/press-pass/activate/` with an
`Idempotency-Key` answers a retry of the same request with the first answer, link included,
while the link lives."""

import uuid

import pytest
import time_machine
from django.db import connection

from accounts.roles import Role
from delivery.crypto import decrypt
from delivery.models import Delivery
from demo_pool.models import ActivationReplay, DemoAccount, PressPass

pytestmark = pytest.mark.django_db

ACTIVATE = "/api/v1/demo/press-pass/activate/"
BODY = {"user_id": "42", "real_name": "Jane Doe", "delivery_method": "api", "contact_info": ""}


@pytest.fixture
def integration(make_user, api):
    """An API key: it does not expire while the clock is moved."""
    from accounts.services import api_key_create

    _, raw = api_key_create(user=make_user(role=Role.SUPER_ADMIN), name="press")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api


def activate(client, key, body=BODY):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(ACTIVATE, body, format="json", **headers)


def test_without_a_key_a_retry_after_a_lost_answer_gets_409_and_no_link(
    admin_api, pool_config, fill
):
    """The defect: the caller never saw the 201, and its retry cannot get the link back."""
    pool_config(min_available=0)
    fill(1)
    assert activate(admin_api, None).status_code == 201  # the answer that got lost

    retry = activate(admin_api, None)

    assert retry.status_code == 409 and retry.json()["code"] == "press_pass_active"
    assert "link" not in str(retry.json())


def test_a_retry_with_the_same_key_gets_the_first_answer_and_its_link_opens(
    admin_api, pool_config, fill, reveal
):
    pool_config(min_available=0)
    fill(2)
    key = str(uuid.uuid4())
    first = activate(admin_api, key)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first

    retry = activate(admin_api, key)

    assert retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.json()["delivery"]["link"].startswith("https://desk.example/d/")
    assert "no-store" in retry["Cache-Control"]
    # One pass, one delivery, one account out of the pool: the retry made nothing new.
    assert PressPass.objects.count() == 1 and Delivery.objects.count() == 1
    assert DemoAccount.objects.filter(status="assigned").count() == 1
    payload = reveal(retry.json()["delivery"]["link"])
    assert payload["login"] == first.json()["account"]["login"]


def test_a_qr_answer_is_replayed_with_its_qr_code(admin_api, pool_config, fill):
    pool_config(min_available=0)
    fill(1)
    key = "qr-" + uuid.uuid4().hex
    body = {**BODY, "delivery_method": "qr"}
    first = activate(admin_api, key, body)

    retry = activate(admin_api, key, body)

    assert retry.status_code == 201 and retry.json() == first.json()
    assert retry.json()["delivery"]["qr_svg"].startswith("<svg")


def test_a_queued_answer_is_replayed_with_the_same_request(admin_api, pool_config):
    pool_config(min_available=0, target_buffer=0)
    key = str(uuid.uuid4())
    first = activate(admin_api, key)
    assert first.status_code == 202

    retry = activate(admin_api, key)

    assert retry.status_code == 202 and retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"


def test_the_quoted_form_of_a_key_is_the_same_key(admin_api, pool_config, fill):
    pool_config(min_available=0)
    fill(1)
    key = str(uuid.uuid4())
    first = activate(admin_api, key)

    retry = activate(admin_api, f'"{key}"')

    assert retry.status_code == 201 and retry.json() == first.json()


def test_the_same_key_with_another_body_is_422_and_changes_nothing(admin_api, pool_config, fill):
    pool_config(min_available=0)
    fill(2)
    key = str(uuid.uuid4())
    activate(admin_api, key)

    other = activate(admin_api, key, {**BODY, "real_name": "Someone Else"})

    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert "link" not in str(other.json())
    assert PressPass.objects.count() == 1 and Delivery.objects.count() == 1


def test_another_caller_with_the_same_user_and_key_is_422_not_the_link(
    admin_api, make_user, pool_config, fill
):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    pool_config(min_available=0)
    fill(2)
    key = str(uuid.uuid4())
    activate(admin_api, key)
    stranger = APIClient()
    token = RefreshToken.for_user(make_user(role=Role.SUPER_ADMIN)).access_token
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    answer = activate(stranger, key)

    assert answer.status_code == 422 and answer.json()["code"] == "idempotency_key_reused"
    assert "link" not in str(answer.json())


def test_a_key_belongs_to_one_user_id(admin_api, pool_config, fill):
    pool_config(min_available=0)
    fill(2)
    key = str(uuid.uuid4())
    first = activate(admin_api, key)

    other_user = activate(admin_api, key, {**BODY, "user_id": "43"})

    assert other_user.status_code == 201
    assert other_user.json()["account"]["login"] != first.json()["account"]["login"]
    assert "Idempotent-Replayed" not in other_user


def test_a_refused_activation_leaves_nothing_to_replay(admin_api, pool_config, fill):
    pool_config(min_available=0)
    fill(2)
    assert activate(admin_api, None).status_code == 201
    key = str(uuid.uuid4())

    refused = activate(admin_api, key)

    assert refused.status_code == 409 and refused.json()["code"] == "press_pass_active"
    assert not ActivationReplay.objects.exists()
    assert DemoAccount.objects.filter(status="available").count() == 1


def test_a_retry_whose_first_request_never_answers_is_told_to_retry_not_held(
    make_user, as_user, pool_config, fill, settings
):
    """The first request with the key died mid-activation (its row has no answer yet): a
    retry waits for it about as long as a password change may take, then gets 409
    `idempotency_key_busy` rather than a request held open for minutes."""
    from django.utils import timezone

    from demo_pool.services.replay import _request_hash, replay_key_hash

    pool_config(min_available=0)
    fill(1)
    caller = make_user(role=Role.SUPER_ADMIN)
    key = str(uuid.uuid4())
    now = timezone.now()
    ActivationReplay.objects.create(
        key_hash=replay_key_hash(user_id=BODY["user_id"], key=key),
        user_id=BODY["user_id"],
        caller=caller,
        request_hash=_request_hash(dict(BODY)),
        created_at=now,
        expires_at=now + timezone.timedelta(minutes=3),
    )
    settings.DEMO_REQUEST_TIMEOUT_SECONDS = 0  # no patience: the answer at once

    retry = activate(as_user(caller), key)

    assert retry.status_code == 409 and retry.json()["code"] == "idempotency_key_busy"
    assert not PressPass.objects.exists()  # the retry activated nothing beside the first


def test_after_the_link_expires_the_key_replays_nothing(integration, pool_config, fill):
    pool_config(min_available=0)
    fill(2)
    key = str(uuid.uuid4())
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        first = activate(integration, key)
        assert first.status_code == 201
        clock.shift(29 * 60)
        assert activate(integration, key).json() == first.json()

        clock.shift(2 * 60)  # 31 minutes: the link is dead, and so is its replay
        late = activate(integration, key)

    assert late.status_code == 409 and late.json()["code"] == "press_pass_active"
    assert not ActivationReplay.objects.exists()


def test_expired_replays_of_other_keys_are_purged_as_activations_come_in(
    integration, pool_config, fill
):
    pool_config(min_available=0)
    fill(2)
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        activate(integration, str(uuid.uuid4()))
        clock.shift(31 * 60)
        activate(integration, str(uuid.uuid4()), {**BODY, "user_id": "43"})

    assert list(ActivationReplay.objects.values_list("user_id", flat=True)) == ["43"]


def test_the_kept_answer_is_not_readable_with_the_database_and_the_keyring(
    admin_api, pool_config, fill
):
    pool_config(min_available=0)
    fill(1)
    key = str(uuid.uuid4())
    link = activate(admin_api, key).json()["delivery"]["link"]
    token = link.rstrip("/").rsplit("/", 1)[1]

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ActivationReplay._meta.db_table}")  # noqa: S608
        stored = repr(cursor.fetchall())
    assert token not in stored and key not in stored
    replay = ActivationReplay.objects.get()
    envelope = replay.__dict__["answer"]
    field = ActivationReplay._meta.get_field("answer")
    under_keyring = decrypt(envelope, aad=field.aad_for(replay))
    assert token not in under_keyring and "delivery" not in under_keyring  # still sealed


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "short-key",  # under 16
        "k" * 129,
        "a key with spaces inside",
        "0123456789abcdef,0123456789abcdef",  # two headers joined
        '"0123456789abcdef',  # unbalanced quote
        "0123456789abcdef\u00e9",
        "0123456789abcdef;drop",
    ],
)
def test_a_malformed_key_is_400_and_activates_nothing(admin_api, pool_config, fill, bad):
    pool_config(min_available=0)
    fill(1)

    answer = admin_api.post(ACTIVATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY=bad)

    assert answer.status_code == 400 and answer.json()["code"] == "idempotency_key_invalid"
    assert not PressPass.objects.exists()


def test_a_demo_server_failure_queues_once_and_the_retry_gets_the_same_request(
    admin_api, pool_config, fill, demo_gateway
):
    pool_config(min_available=0)
    fill(1)
    demo_gateway.fail_next("change_password")
    key = str(uuid.uuid4())
    first = activate(admin_api, key)
    assert first.status_code == 202

    retry = activate(admin_api, key)

    assert retry.status_code == 202 and retry.json() == first.json()
    assert DemoAccount.objects.filter(status="available").count() == 1  # back in the pool
    assert not PressPass.objects.exists()
