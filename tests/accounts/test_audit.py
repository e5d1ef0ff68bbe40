"""The audit trail: chains, immutability (model, queryset, PostgreSQL trigger), verification."""

import ipaddress
import json
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import override_settings

from accounts.models import AuditEvent, AuditRefused, User
from accounts.services import audit, audit_record, audit_record_many, audit_verify
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return User.objects.create_user("Ops@Example.com", "pw", is_staff=True)


def record_three(object_id="7"):
    return [
        audit_record(action=action, object_type="bonuses.bonus", object_id=object_id)
        for action in ("bonus.granted", "bonus.adjusted", "bonus.removed")
    ]


@contextmanager
def behind_the_applications_back():
    """Raw SQL as a database superuser would run it: on PostgreSQL, past the trigger too."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            # The test's own inserts left deferred foreign-key checks queued; ALTER TABLE
            # refuses to run over them, so run them now (a superuser's session has none).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE accounts_auditevent DISABLE TRIGGER USER")
        try:
            yield cursor
        finally:
            if postgres:
                cursor.execute("ALTER TABLE accounts_auditevent ENABLE TRIGGER USER")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def verify_audit(*args):
    """Run the command; return (exit code, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# --- Recording --------------------------------------------------------------------------------


def test_recording_builds_a_chain_with_seq_1_2_3_and_linked_hashes():
    first, second, third = record_three()

    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == ""
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert all(len(event.hash) == 64 for event in (first, second, third))
    assert len({first.hash, second.hash, third.hash}) == 3
    assert audit_verify().intact


def test_each_object_has_its_own_chain():
    record_three(object_id="7")
    other = audit_record(action="bonus.granted", object_type="bonuses.bonus", object_id=8)

    assert other.seq == 1
    assert other.prev_hash == ""
    assert other.object_id == "8"
    result = audit_verify()
    assert (result.events_checked, result.chains_checked) == (4, 2)


def test_a_model_instance_names_the_chain_by_its_label_and_pk(staff):
    event = audit_record(action="user.role_changed", obj=staff)

    assert (event.object_type, event.object_id) == ("accounts.user", str(staff.pk))


def test_a_user_is_recorded_as_the_actor_by_email_and_no_actor_means_the_system(staff):
    by_staff = audit_record(
        action="campaign.activated",
        object_type="campaigns.campaign",
        object_id=1,
        actor=staff,
        reason="launch",
        ip="10.0.0.9",
        mt5_login=5001234,
    )
    by_system = audit_record(
        action="campaign.expired", object_type="campaigns.campaign", object_id=1
    )

    stored = AuditEvent.objects.get(pk=by_staff.pk)
    assert (stored.actor_id, stored.actor_label) == (staff.pk, "ops@example.com")
    assert (stored.reason, stored.ip, stored.mt5_login) == ("launch", "10.0.0.9", 5001234)
    assert (by_system.actor_id, by_system.actor_label) == (None, "system")
    assert audit_verify().intact


def test_decimals_and_datetimes_in_before_and_after_round_trip_and_verify():
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    event = audit_record(
        action="bonus.adjusted",
        object_type="bonuses.bonus",
        object_id=7,
        before={"credit": Decimal("100.00"), "granted_at": when, "tags": ["a", None]},
        after={"credit": Decimal("150.50"), "granted_at": when, "tags": []},
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.before == {
        "credit": "100.00",
        "granted_at": "2026-03-01T12:30:15.123Z",
        "tags": ["a", None],
    }
    assert stored.after == event.after
    assert stored.hash == audit._event_hash(stored)
    assert audit_verify().intact


def test_numbers_of_every_shape_round_trip_and_verify():
    # PostgreSQL's jsonb rewrites 1e+300 as 1 followed by 300 zeros and keys in its own order.
    values = {
        "zz": 1,
        "a": 0.1,
        "big": 1e300,
        "tiny": 1.5e-7,
        "whole": 2.0,
        "huge": 10**30,
        "neg": -0.0,
        "nested": {"b": [1e20, 3.25]},
    }
    event = audit_record(action="x.changed", object_type="x.x", object_id=1, after=values)

    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.after == event.after
    assert stored.after["big"] == 10**300
    assert stored.after["whole"] == 2
    assert audit_verify().intact


def test_the_time_hashes_the_same_after_the_database_stores_it():
    for instant in (
        datetime(2026, 5, 17, 8, 0, 0, 999999, tzinfo=UTC),
        datetime(2026, 5, 17, 8, 0, 1, 0, tzinfo=UTC),  # SQLite stores no fraction for this
    ):
        with time_machine.travel(instant, tick=False):
            event = audit_record(action="x.touched", object_type="x.x", object_id=1)
        stored = AuditEvent.objects.get(pk=event.pk)
        assert stored.at == instant
        assert stored.hash == audit._event_hash(stored)
    assert audit_verify().intact


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:0102:0304", "::ffff:1.2.3.4"),
        ("::1.2.3.4", "::102:304"),  # which PostgreSQL's inet reads back as "::1.2.3.4"
        (" 10.0.0.1 ", "10.0.0.1"),
        ("", None),
    ],
)
def test_an_ip_address_is_written_as_django_writes_it_and_verifies_as_read_back(given, written):
    event = audit_record(action="x.touched", object_type="x.x", object_id=1, ip=given)

    read_back = AuditEvent.objects.get(pk=event.pk).ip
    assert event.ip == written
    assert (read_back and ipaddress.ip_address(read_back)) == (
        written and ipaddress.ip_address(written)
    )
    assert audit_verify().intact


@pytest.mark.parametrize(
    "kwargs",
    [
        {"object_type": "x.x", "object_id": 1, "ip": "not-an-ip"},
        {"object_type": "x.x", "object_id": 1, "ip": "fe80::1%eth0"},
        {"object_type": "x.x"},
        {"object_id": 1},
        {"object_type": "x.x", "object_id": "1" * 65},
        {"object_type": "x.x", "object_id": 1, "after": {"ratio": float("nan")}},
    ],
    ids=["bad ip", "scoped ip", "no id", "no type", "id too long", "nan"],
)
def test_an_event_that_could_not_be_stored_faithfully_is_refused(kwargs):
    with pytest.raises(ValueError):
        audit_record(action="x.touched", **kwargs)
    assert not AuditEvent.objects.exists()


def test_an_event_recorded_in_a_transaction_that_rolls_back_leaves_no_trace():
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="bonus.granted", object_type="bonuses.bonus", object_id=7)
        raise RuntimeError("the grant failed after all")

    assert not AuditEvent.objects.exists()
    assert audit_record(action="bonus.granted", object_type="bonuses.bonus", object_id=7).seq == 1


def test_a_writer_that_lost_the_race_for_a_seq_retries_and_links_to_the_new_head(monkeypatch):
    first = audit_record(action="bonus.granted", object_type="bonuses.bonus", object_id=7)
    real_head = audit._chain_head
    calls = []

    def stale_once(*args):
        calls.append(args)
        return (0, "") if len(calls) == 1 else real_head(*args)

    monkeypatch.setattr(audit, "_chain_head", stale_once)
    with transaction.atomic():  # the caller's transaction survives the failed attempt
        second = audit_record(action="bonus.removed", object_type="bonuses.bonus", object_id=7)

    assert len(calls) == 2
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert audit_verify().intact


def test_a_writer_gives_up_after_a_bounded_number_of_lost_races(monkeypatch):
    audit_record(action="bonus.granted", object_type="bonuses.bonus", object_id=7)
    calls = []
    monkeypatch.setattr(audit, "_chain_head", lambda *args: calls.append(args) or (0, ""))

    with pytest.raises(IntegrityError):
        audit_record(action="bonus.removed", object_type="bonuses.bonus", object_id=7)
    assert len(calls) == audit._MAX_ATTEMPTS


def test_many_events_at_once_link_onto_their_chains_heads_in_order(staff):
    first = audit_record(action="bonus.granted", object_type="bonuses.bonus", object_id=7)

    events = audit_record_many(
        [
            {"action": "bonus.activated", "object_type": "bonuses.bonus", "object_id": 7},
            {"action": "bonus.granted", "object_type": "bonuses.bonus", "object_id": 8},
            {
                "action": "bonus.adjusted",
                "object_type": "bonuses.bonus",
                "object_id": 7,
                "actor": staff,
                "after": {"amount": Decimal("12.50")},
                "mt5_login": 10001,
            },
        ]
    )
    later = audit_record(action="bonus.removed", object_type="bonuses.bonus", object_id=7)

    assert [(e.object_id, e.seq) for e in events] == [("7", 2), ("8", 1), ("7", 3)]
    assert events[0].prev_hash == first.hash and events[2].prev_hash == events[0].hash
    assert (later.seq, later.prev_hash) == (4, events[2].hash)
    stored = AuditEvent.objects.get(object_id="7", seq=3)
    assert (stored.actor_label, stored.after, stored.mt5_login) == (
        "ops@example.com",
        {"amount": "12.50"},
        10001,
    )
    assert audit_verify().intact


def test_many_events_at_once_are_checked_like_one_and_none_is_written_if_one_is_bad():
    with pytest.raises(ValueError, match="needs an action"):
        audit_record_many(
            [
                {"action": "bonus.granted", "object_type": "bonuses.bonus", "object_id": 7},
                {"action": "", "object_type": "bonuses.bonus", "object_id": 8},
            ]
        )
    assert not AuditEvent.objects.exists()


def test_a_batch_that_lost_the_race_for_a_seq_reads_the_heads_again(monkeypatch):
    first = audit_record(action="bonus.granted", object_type="bonuses.bonus", object_id=7)
    real_heads = audit._chain_heads
    calls = []

    def stale_once(*args):
        calls.append(args)
        return {} if len(calls) == 1 else real_heads(*args)

    monkeypatch.setattr(audit, "_chain_heads", stale_once)
    with transaction.atomic():
        [second] = audit_record_many(
            [{"action": "bonus.removed", "object_type": "bonuses.bonus", "object_id": 7}]
        )

    assert len(calls) == 2
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert audit_verify().intact


# --- Immutability -----------------------------------------------------------------------------


def test_saving_an_existing_event_again_is_refused():
    event = record_three()[0]
    event.reason = "nothing happened"

    with pytest.raises(AuditRefused):
        event.save()
    with pytest.raises(AuditRefused):
        event.save(update_fields=["reason"])
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_deleting_an_event_is_refused():
    event = record_three()[0]

    with pytest.raises(AuditRefused):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_updating_or_deleting_through_a_queryset_is_refused():
    record_three()

    with pytest.raises(AuditRefused):
        AuditEvent.objects.filter(seq=2).update(reason="edited")
    with pytest.raises(AuditRefused):
        AuditEvent.objects.all().delete()
    # bulk_update's own savepoint-less atomic would poison the test's transaction.
    with pytest.raises(AuditRefused), transaction.atomic():
        AuditEvent.objects.bulk_update(list(AuditEvent.objects.all()), ["reason"])
    assert AuditEvent.objects.count() == 3
    assert audit_verify().intact


@pytest.mark.postgres
def test_postgresql_refuses_a_raw_update_of_an_event():
    event = record_three()[1]

    with (
        pytest.raises(DatabaseError, match="audit events are immutable"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE accounts_auditevent SET reason = 'edited' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


@pytest.mark.postgres
def test_postgresql_refuses_a_raw_delete_of_an_event():
    event = record_three()[1]

    with (
        pytest.raises(DatabaseError, match="audit events are immutable"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM accounts_auditevent WHERE id = %s", [event.pk])
    with (
        pytest.raises(DatabaseError, match="audit events are immutable"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM accounts_auditevent")
    assert AuditEvent.objects.count() == 3


@pytest.mark.postgres
def test_postgresql_leaves_truncate_to_the_table_owner_for_the_test_flush():
    record_three()

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as for the ALTER TABLE above
        cursor.execute("TRUNCATE accounts_auditevent")
    assert not AuditEvent.objects.exists()


# --- Verification -----------------------------------------------------------------------------


def test_verify_audit_reports_an_intact_trail():
    record_three(object_id="7")
    record_three(object_id="8")

    assert verify_audit() == (0, "audit trail intact: 6 events in 2 chains\n", "")


def test_verify_audit_finds_a_row_altered_behind_the_applications_back():
    tampered = record_three()[1]
    with behind_the_applications_back() as cursor:
        cursor.execute(
            "UPDATE accounts_auditevent SET reason = %s WHERE id = %s",
            ["client asked for it", tampered.pk],
        )

    code, out, err = verify_audit()

    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"audit trail BROKEN at event {tampered.pk} (bonuses.bonus:7, seq 2): hash mismatch",
        "1 broken link(s) in 3 events in 1 chains",
    ]


def test_verify_audit_finds_an_amount_altered_in_the_stored_json():
    audit_record(
        action="bonus.granted",
        object_type="bonuses.bonus",
        object_id=7,
        after={"credit": Decimal("100.00")},
    )
    tampered = audit_record(
        action="bonus.adjusted",
        object_type="bonuses.bonus",
        object_id=7,
        before={"credit": Decimal("100.00")},
        after={"credit": Decimal("150.00")},
    )
    with behind_the_applications_back() as cursor:
        cursor.execute(
            'UPDATE accounts_auditevent SET "after" = %s WHERE id = %s',
            [json.dumps({"credit": "1500.00"}), tampered.pk],
        )

    result = audit_verify()

    assert AuditEvent.objects.get(pk=tampered.pk).after == {"credit": "1500.00"}
    assert result.first_break == audit.BrokenLink(
        event_id=tampered.pk,
        object_type="bonuses.bonus",
        object_id="7",
        seq=2,
        problem="hash mismatch",
    )


def test_verify_audit_finds_a_deleted_middle_event_as_a_sequence_gap():
    _first, deleted, third = record_three()
    with behind_the_applications_back() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent WHERE id = %s", [deleted.pk])

    code, _, err = verify_audit()

    assert code == 1
    assert err.splitlines()[0] == (
        f"audit trail BROKEN at event {third.pk} (bonuses.bonus:7, seq 3): "
        "sequence gap (seq 2 missing)"
    )


def test_verify_audit_finds_a_relinked_prev_hash():
    first, _second, third = record_three()
    with behind_the_applications_back() as cursor:
        cursor.execute(
            "UPDATE accounts_auditevent SET prev_hash = %s WHERE id = %s", [first.hash, third.pk]
        )

    link = audit_verify().first_break

    assert (link.event_id, link.seq, link.problem) == (third.pk, 3, "prev_hash does not match")


def test_a_forger_without_the_chain_key_cannot_make_an_altered_row_verify():
    tampered = record_three()[2]
    tampered.reason = "forged"
    with override_settings(AUDIT_CHAIN_KEY="a guess at the key"):
        forged_hash = audit._event_hash(tampered)
    with behind_the_applications_back() as cursor:
        cursor.execute(
            "UPDATE accounts_auditevent SET reason = %s, hash = %s WHERE id = %s",
            ["forged", forged_hash, tampered.pk],
        )

    link = audit_verify().first_break

    assert (link.event_id, link.problem) == (tampered.pk, "hash mismatch")


def test_verify_audit_counts_every_broken_link_but_names_the_first():
    record_three(object_id="7")
    b_events = record_three(object_id="8")
    with behind_the_applications_back() as cursor:
        for event in b_events[1:]:
            cursor.execute("UPDATE accounts_auditevent SET reason = 'x' WHERE id = %s", [event.pk])

    result = audit_verify()

    assert (result.events_checked, result.chains_checked, result.breaks) == (6, 2, 2)
    assert (result.first_break.object_id, result.first_break.seq) == ("8", 2)


def test_verify_audit_can_walk_one_type_or_one_object_only():
    record_three(object_id="7")
    tampered = record_three(object_id="8")[0]
    audit_record(action="campaign.activated", object_type="campaigns.campaign", object_id=1)
    with behind_the_applications_back() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET reason = 'x' WHERE id = %s", [tampered.pk])

    assert verify_audit("--object-type", "bonuses.bonus", "--object-id", "7") == (
        0,
        "audit trail intact: 3 events in 1 chains\n",
        "",
    )
    assert verify_audit("--object-type", "campaigns.campaign")[0] == 0
    assert verify_audit("--object-type", "bonuses.bonus")[0] == 1
    with pytest.raises(CommandError, match="--object-type"):
        call_command("verify_audit", "--object-id", "7")


def test_verify_audit_on_an_empty_trail_is_intact():
    assert verify_audit() == (0, "audit trail intact: 0 events in 0 chains\n", "")


# --- Concurrency ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_one_object_build_one_gapless_chain(monkeypatch):
    threads_count, events_each = 8, 10
    head_reads = []
    real_head = audit._chain_head

    def counted_head(*args):
        head_reads.append(args)
        return real_head(*args)

    monkeypatch.setattr(audit, "_chain_head", counted_head)
    start = threading.Barrier(threads_count)
    errors = []

    def writer(n):
        try:
            start.wait()
            for i in range(events_each):
                with transaction.atomic():
                    audit_record(
                        action="bonus.adjusted",
                        object_type="bonuses.bonus",
                        object_id=7,
                        after={"writer": n, "i": i},
                    )
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = threads_count * events_each
    assert errors == []
    seqs = list(
        AuditEvent.objects.filter(object_type="bonuses.bonus", object_id="7")
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    assert seqs == list(range(1, total + 1))
    # The chain's advisory lock queues the writers: nobody had to retry a lost seq.
    assert len(head_reads) == total
    result = audit_verify()
    assert (result.intact, result.events_checked, result.chains_checked) == (True, total, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_and_single_writers_at_once_on_shared_chains_build_gapless_chains():
    # Each batch writes on chains 1..4 in a different order: the locks are taken in key
    # order, so no two batches deadlock, and single writers queue with them.
    def work(n):
        for i in range(5):
            with transaction.atomic():
                if n % 2:
                    audit_record(
                        action="bonus.adjusted",
                        object_type="bonuses.bonus",
                        object_id=1 + (n + i) % 4,
                        after={"n": n, "i": i},
                    )
                else:
                    ids = [1, 2, 3, 4][n % 4 :] + [1, 2, 3, 4][: n % 4]
                    audit_record_many(
                        [
                            {
                                "action": "bonus.adjusted",
                                "object_type": "bonuses.bonus",
                                "object_id": object_id,
                                "after": {"n": n, "i": i},
                            }
                            for object_id in ids
                        ]
                    )
        return n

    results, errors = run_at_once(work, 6)

    assert errors == [] and sorted(results) == list(range(6))
    for object_id in ("1", "2", "3", "4"):
        seqs = list(
            AuditEvent.objects.filter(object_id=object_id)
            .order_by("seq")
            .values_list("seq", flat=True)
        )
        assert seqs == list(range(1, len(seqs) + 1))
    # 3 batch writers x 5 batches x 4 chains, 3 single writers x 5 events.
    assert AuditEvent.objects.count() == 3 * 5 * 4 + 3 * 5
    assert audit_verify().intact
