import pytest

from licensing.models import License

pytestmark = pytest.mark.django_db
TRADES = "/api/v1/licenses/trades/"


def trade(**overrides):
    return {
        "symbol": "EURUSD",
        "side": "BUY",
        "quantity": "1.0",
        "entry_price": "1.1000",
        "exit_price": "1.1050",
        "pnl": "50.00",
        "signal_confidence": "80",
        "opened_at": "2026-01-05T10:00:00Z",
        "closed_at": "2026-01-05T11:00:00Z",
        **overrides,
    }


def test_a_license_holder_reports_trades_and_reads_the_stats(api, make_license):
    _, key = make_license()
    for pnl in ("50.00", "-20.00", "30.00"):
        response = api.post(TRADES, trade(pnl=pnl), format="json", HTTP_X_LICENSE_KEY=key)
        assert response.status_code == 201
    stats = api.get(f"{TRADES}stats/", HTTP_X_LICENSE_KEY=key).json()
    assert stats == {
        "total_trades": 3,
        "wins": 2,
        "losses": 1,
        "win_rate": "66.67",
        "total_pnl": "60.00",
        "avg_pnl": "20.00",
    }


@pytest.mark.parametrize(
    "bad", [{"entry_price": "0"}, {"exit_price": "-1"}, {"closed_at": "2026-01-05T09:00:00Z"}]
)
def test_bad_trades_are_400(api, make_license, bad):
    _, key = make_license()
    assert api.post(TRADES, trade(**bad), format="json", HTTP_X_LICENSE_KEY=key).status_code == 400


def test_trades_need_a_usable_license_key(api, make_license):
    assert api.post(TRADES, trade(), format="json").status_code == 401
    license, key = make_license()
    from licensing.services import license_suspend

    license_suspend(license=license)
    response = api.post(TRADES, trade(), format="json", HTTP_X_LICENSE_KEY=key)
    assert (response.status_code, response.json()["code"]) == (403, "license_suspended")


def test_a_client_subscribes_changes_and_cancels_its_own_subscription(as_user, make_user):
    client = as_user(make_user())
    created = client.post("/api/v1/subscriptions/", {"plan": "basic"}, format="json")
    assert created.status_code == 201
    assert created.json()["plan"]["max_active_sessions"] >= 1
    sid = created.json()["id"]
    assert (
        client.patch(f"/api/v1/subscriptions/{sid}/", {"plan": "premium"}, format="json").json()[
            "plan"
        ]["code"]
        == "premium"
    )
    assert client.delete(f"/api/v1/subscriptions/{sid}/").status_code == 204
    assert client.get("/api/v1/subscriptions/").json()["results"][0]["is_active"] is False
    other = as_user(make_user())
    assert other.delete(f"/api/v1/subscriptions/{sid}/").status_code == 404


def test_the_license_command_issues_and_manages_keys(capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    call_command("license", "init-admin")
    out = capsys.readouterr().out
    assert "ADMIN license key (shown once" in out
    with pytest.raises(CommandError):
        call_command("license", "init-admin")
    call_command("license", "create", "C1", "--type", "TRIAL", "--email", "c@x.io")
    call_command("license", "suspend", "C1", "--reason", "test")
    assert License.objects.get(account_id="C1").status == "SUSPENDED"
    call_command("license", "activate", "C1")
    call_command("license", "extend", "C1", "--days", "3")
    call_command("license", "list")
    assert "C1\tTRIAL\tVALID" in capsys.readouterr().out


def test_license_create_can_send_the_key_by_a_one_time_link_instead_of_printing_it(capsys, api):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from delivery.services import delivery_reveal

    call_command("license", "create", "L1", "--type", "MONTHLY", "--deliver-by", "api")
    out = capsys.readouterr().out
    link = out.rsplit(": ", 1)[1].strip()
    key = delivery_reveal(token=link.rstrip("/").rsplit("/", 1)[1], ip=None).payload["license_key"]
    assert key not in out
    validated = api.post("/api/v1/licenses/validate/", {"license_key": key}, format="json")
    assert validated.json()["account_id"] == "L1"
    call_command(
        "license", "create", "L2", "--deliver-by", "telegram", "--contact", "@brokerdesk_vip"
    )
    assert "sent by telegram to @brokerdesk_vip" in capsys.readouterr().out
    with pytest.raises(CommandError, match="invalid_contact"):
        call_command("license", "create", "L3", "--deliver-by", "email", "--contact", "nobody")
    assert not License.objects.filter(account_id="L3").exists()
