import pytest
from django.core.management import call_command

from accounts.roles import Role
from demo_pool.models import DemoAccount, PressPass
from demo_pool.services import press_pass_activate

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, make_user):
    def login(role):
        user = make_user(role=role, is_staff=True)
        client.force_login(user)
        return client

    return login


def test_pool_status_prints_every_figure(pool_config, fill, capsys):
    pool_config()
    fill(2)
    call_command("pool", "status")
    out = capsys.readouterr().out
    assert "available                2" in out and "queue_depth" in out


def test_pool_replenish_provisions_n_accounts(pool_config, capsys):
    pool_config()
    call_command("pool", "replenish", "--count", "3")
    assert "provisioned 3" in capsys.readouterr().out
    assert DemoAccount.objects.filter(status="available").count() == 3


def test_the_dashboard_shows_the_pool_and_replenishes(staff_client, pool_config, fill):
    pool_config()
    fill(1)
    client = staff_client(Role.SUPER_ADMIN)

    page = client.get("/admin/demo_pool/demoaccount/dashboard/")
    assert page.status_code == 200 and b"Accounts by state" in page.content
    client.post("/admin/demo_pool/demoaccount/dashboard/", {"count": "2"})
    assert DemoAccount.objects.filter(status="provisioning").count() == 2


def test_the_dashboard_says_no_data_rather_than_a_perfect_rate(staff_client, pool_config, fill):
    """Found by a newcomer: an untouched pool showed delivery success 1.000."""
    pool_config(min_available=0)
    fill(1)
    client = staff_client(Role.SUPER_ADMIN)

    quiet = client.get("/admin/demo_pool/demoaccount/dashboard/").content.decode()
    press_pass_activate(user_id="u", real_name="U", delivery_method="api")
    used = client.get("/admin/demo_pool/demoaccount/dashboard/").content.decode()

    assert "no deliveries in 7 days" in quiet and "no activations in 7 days" in quiet
    assert "Delivery success 1.000 of 1" in used
    assert "Served at once 1.000 of 1 activations" in used


def test_the_configuration_changelist_opens_the_one_row(staff_client, pool_config):
    pool_config()
    response = staff_client(Role.SUPER_ADMIN).get("/admin/demo_pool/poolconfig/")
    assert response.status_code == 302 and response.url.endswith("/poolconfig/1/change/")


def test_the_configuration_page_says_assigned_accounts_do_not_count_against_the_max(
    staff_client, pool_config
):
    pool_config()
    page = staff_client(Role.SUPER_ADMIN).get("/admin/demo_pool/poolconfig/1/change/")
    assert page.status_code == 200
    assert b"Assigned accounts belong to their press passes and do not count." in page.content


def test_admin_pages_never_show_a_password(staff_client, pool_config, fill):
    pool_config(min_available=0)
    fill(1)
    account = DemoAccount.objects.get()
    password = str(account.password)
    client = staff_client(Role.SUPER_ADMIN)
    for url in (
        "/admin/demo_pool/demoaccount/",
        f"/admin/demo_pool/demoaccount/{account.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert password.encode() not in response.content


def test_retire_and_resend_actions(staff_client, pool_config, fill):
    pool_config(min_available=0)
    fill(2)
    press_pass = press_pass_activate(user_id="u", real_name="U", delivery_method="api").press_pass
    first_delivery = press_pass.delivery_id
    client = staff_client(Role.SUPER_ADMIN)
    spare = DemoAccount.objects.get(status="available")

    client.post(
        "/admin/demo_pool/demoaccount/",
        {"action": "retire_accounts", "_selected_action": [spare.pk]},
    )
    client.post(
        "/admin/demo_pool/presspass/",
        {"action": "resend_credentials", "_selected_action": [press_pass.pk]},
    )

    spare.refresh_from_db()
    assert spare.status == "retired"
    assert PressPass.objects.get().delivery_id != first_delivery


def test_metrics_serve_the_pool_gauges(client, pool_config, fill, settings):
    settings.METRICS_TOKEN = ""
    pool_config()
    fill(1)
    body = client.get("/metrics").content.decode()
    assert 'brokerdesk_demo_pool_accounts{status="available"} 1.0' in body
    assert "brokerdesk_demo_pool_provisioning_latency_seconds" in body
    assert "brokerdesk_demo_pool_assignments_total" in body


def test_the_admin_resend_shows_the_new_link_of_an_api_pass_once_and_it_opens(
    staff_client, pool_config, fill, reveal
):
    """Found by a newcomer: the action said the link was "in the deliveries", which never
    show a secret, while the old link was already dead: staff had nothing to hand over."""
    import re
    from html import unescape

    pool_config(min_available=0)
    fill(1)
    press_pass_activate(user_id="u", real_name="U", delivery_method="api")
    client = staff_client(Role.SUPPORT_AGENT)

    page = client.post(
        "/admin/demo_pool/presspass/",
        {"action": "resend_credentials", "_selected_action": [PressPass.objects.get().pk]},
    )

    assert page.status_code == 200
    assert "no-store" in page.get("Cache-Control", "")  # the admin's never_cache
    [link] = re.findall(r'value="(https?://[^"]+/d/[^"]+)"', page.content.decode())
    assert reveal(unescape(link))["password"] == DemoAccount.objects.get(status="assigned").password
    assert link not in str(page.cookies)  # not kept in a message cookie either
