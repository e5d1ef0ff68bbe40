"""The channel registry: every channel says itself what differs (the link to the caller or
not, the contact, the send, the task), unknown ones are refused, and a new channel is one
module: proved here with test-only channels registered the way `delivery/channels/*.py` are."""

from pathlib import Path

import pytest

from delivery import tasks
from delivery.channels import (
    Channel,
    channel_get,
    channel_register,
    channel_unregister,
    channels_all,
    check_channels,
)
from delivery.errors import InvalidDeliveryError, UnknownChannelError
from delivery.models import Delivery
from delivery.services import delivery_contact_check, delivery_result

from .conftest import PAYLOAD, token_of

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_every_method_a_delivery_can_store_has_exactly_one_channel():
    assert sorted(c.method for c in channels_all()) == sorted(Delivery.Method.values)
    assert check_channels() == []


def test_api_and_qr_hand_the_link_to_the_caller_telegram_and_email_carry_it():
    handed = {c.method: c.hands_link_to_caller for c in channels_all()}
    assert handed == {"api": True, "qr": True, "telegram": False, "email": False}
    assert set(tasks.SEND_TASKS) == {"telegram", "email"}
    assert tasks.send_telegram.name == "delivery.send_telegram"
    assert tasks.send_email.name == "delivery.send_email"


@pytest.mark.parametrize("method", ["pigeon", "", None, "API", ["api"]])
def test_an_unregistered_method_raises_a_clear_400(method):
    with pytest.raises(UnknownChannelError) as caught:
        channel_get(method)
    assert (caught.value.status_code, caught.value.code) == (400, "invalid_method")
    assert "Unknown delivery method" in caught.value.detail
    with pytest.raises(UnknownChannelError):
        delivery_contact_check(method=method, contact="x")


def test_the_result_says_whether_the_caller_may_show_the_link(create):
    by_api = create(method="api")
    by_telegram = create(method="telegram", contact="5550001", purpose="test.credentials:2")

    assert by_api.caller_link == by_api.link
    assert by_telegram.caller_link is None
    assert by_telegram.link  # the channel's worker needs it; the caller may not show it


def test_a_stored_link_gets_the_same_answer_again():
    from delivery.services import delivery_create

    first = delivery_create(purpose="test.credentials:1", payload=dict(PAYLOAD), method="qr")
    again = delivery_result(delivery=first.delivery, link=first.link)

    assert (again.caller_link, again.qr_svg) == (first.link, first.qr_svg)


def test_a_channel_is_either_handed_to_the_caller_or_sent_never_both_nor_neither():
    with pytest.raises(ValueError, match="not both and not neither"):
        Channel(method="x", hands_link_to_caller=True, contact_check=str, send=print)
    with pytest.raises(ValueError, match="not both and not neither"):
        Channel(method="x", hands_link_to_caller=False, contact_check=str)


def test_a_method_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="registered already"):
        channel_register(channel_get("api"))


def test_no_other_app_keeps_its_own_list_of_channels():
    for app in ("demo_pool", "licensing", "trading_sessions", "operations"):
        for path in (ROOT / app).rglob("*.py"):
            assert "HANDED_TO_CALLER" not in path.read_text(), path


# --- A new channel, as docs/delivery.md "A new channel" writes it ---------------------------

pigeon_sent: list[tuple[str, str]] = []


def _pigeon_contact(contact: str) -> str:
    if not contact.startswith("loft:"):
        raise InvalidDeliveryError("A pigeon needs a loft.", code="invalid_contact")
    return contact


def _pigeon_send(delivery: Delivery, link: str) -> None:
    pigeon_sent.append((delivery.contact, link))


@pytest.fixture
def pigeon():
    """A test-only channel that a worker sends, registered as a module would register it."""
    pigeon_sent.clear()
    channel = channel_register(
        Channel(
            method="pigeon",
            hands_link_to_caller=False,
            contact_check=_pigeon_contact,
            send=_pigeon_send,
            task_options={"soft_time_limit": 5, "time_limit": 10},
        )
    )
    yield channel
    channel_unregister("pigeon")
    tasks.SEND_TASKS.pop("pigeon", None)


@pytest.fixture
def paper():
    """A test-only channel that hands the link to the caller, with an extra of its own."""
    channel = channel_register(
        Channel(
            method="paper",
            hands_link_to_caller=True,
            contact_check=lambda contact: contact,
            extras=lambda link: {"qr_svg": f"<svg>{len(link)}</svg>"},
        )
    )
    yield channel
    channel_unregister("paper")


def test_a_registered_channel_is_sent_by_its_own_task_and_its_link_stays_the_channels(
    create, pigeon, eager_tasks, django_capture_on_commit_callbacks, client
):
    with django_capture_on_commit_callbacks(execute=True):
        result = create(method="pigeon", contact="  loft:7  ")

    assert result.caller_link is None
    assert pigeon_sent == [("loft:7", result.link)]
    row = Delivery.objects.get(pk=result.delivery.pk)
    assert (row.method, row.status, row.send_attempts, row.pending_link) == (
        "pigeon",
        "sent",
        1,
        None,
    )
    task = tasks.send_task_for("pigeon")
    assert (task.name, task.soft_time_limit, task.time_limit) == ("delivery.send_pigeon", 5, 10)
    assert task.max_retries == tasks.send_telegram.max_retries  # the shared retry policy

    from delivery.services import delivery_reveal

    revealed = delivery_reveal(token=token_of(result), ip="127.0.0.1")
    assert revealed.payload == PAYLOAD


def test_a_registered_channel_checks_its_contact(create, pigeon):
    with pytest.raises(InvalidDeliveryError) as caught:
        create(method="pigeon", contact="rooftop")
    assert caught.value.code == "invalid_contact"
    assert not Delivery.objects.exists()


def test_a_registered_channel_that_hands_over_answers_the_link_at_once(create, paper):
    result = create(method="paper")

    assert result.caller_link == result.link
    assert result.qr_svg == f"<svg>{len(result.link)}</svg>"
    assert Delivery.objects.get(pk=result.delivery.pk).status == "sent"
    with pytest.raises(ValueError, match="nothing to send"):
        tasks.send_task_for("paper")


def test_a_channel_without_a_method_value_is_caught_by_the_system_check(pigeon):
    [error] = check_channels()
    assert error.id == "delivery.E003"
    assert "'pigeon' is not a Delivery.Method value" in error.msg


def test_after_unregistering_the_method_is_unknown_again(pigeon):
    channel_unregister("pigeon")
    with pytest.raises(UnknownChannelError):
        channel_get("pigeon")
