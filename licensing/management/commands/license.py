"""`manage.py license create|extend|suspend|activate|list|init-admin|keygen`.

`create --deliver-by telegram|email|api|qr --contact C` sends the key through a one-time
delivery link instead of printing it."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from delivery.models import Delivery
from licensing.models import License
from licensing.services import (
    license_activate,
    license_create,
    license_create_delivered,
    license_extend,
    license_suspend,
)
from licensing.signing import new_private_key_b64


class Command(BaseCommand):
    help = "Issue and manage license keys (a key is printed once; only its hash is kept)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="issue a license and print its key once")
        create.add_argument("account_id")
        create.add_argument(
            "--type", dest="license_type", default=License.Type.MONTHLY, choices=License.Type.values
        )
        create.add_argument("--days", type=int, default=None)
        create.add_argument("--email", default="")
        create.add_argument("--notes", default="")
        create.add_argument(
            "--deliver-by",
            choices=Delivery.Method.values,
            help="send the key through a one-time link by this channel instead of printing it",
        )
        create.add_argument("--contact", default="", help="the chat id/@channel or email address")
        extend = sub.add_parser("extend", help="add days (an expired license: from now)")
        extend.add_argument("account_id")
        extend.add_argument("--days", type=int, required=True)
        suspend = sub.add_parser("suspend")
        suspend.add_argument("account_id")
        suspend.add_argument("--reason", default="")
        activate = sub.add_parser("activate")
        activate.add_argument("account_id")
        listing = sub.add_parser("list")
        listing.add_argument("--type", dest="license_type", choices=License.Type.values)
        init = sub.add_parser("init-admin", help="the first ADMIN license, its key printed once")
        init.add_argument("--account-id", default="admin")
        init.add_argument("--email", default="")
        sub.add_parser("keygen", help="print a new LICENSE_SIGNING_KEY")

    def handle(self, *args, action, **options):
        try:
            getattr(self, "do_" + action.replace("-", "_"))(**options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc

    def _license(self, account_id) -> License:
        license = License.objects.filter(account_id=account_id).first()
        if license is None:
            raise CommandError(f"no license for {account_id!r}")
        return license

    def _show(self, license: License) -> str:
        expires = license.expires_at.isoformat() if license.expires_at else "never"
        return (
            f"{license.account_id}\t{license.license_type}\t{license.code_at()}\t"
            f"{expires}\t…{license.key_last4}\t{license.email}"
        )

    def do_create(
        self, *, account_id, license_type, days, email, notes, deliver_by=None, contact="", **_
    ):
        fields = {
            "account_id": account_id,
            "license_type": license_type,
            "duration_days": days,
            "email": email,
            "notes": notes,
        }
        if not deliver_by:
            license, key = license_create(**fields)
            self.stdout.write(self._show(license))
            self.stdout.write(f"License key (shown once): {key}")
            return
        license, result = license_create_delivered(method=deliver_by, contact=contact, **fields)
        delivery = result.delivery
        self.stdout.write(self._show(license))
        expires = f"{delivery.expires_at:%Y-%m-%d %H:%M} UTC"
        if result.caller_link is not None:
            self.stdout.write(
                f"License key in a one-time link (delivery #{delivery.pk}, opens once, until "
                f"{expires}): {result.caller_link}"
            )
        else:
            self.stdout.write(
                f"License key sent by {deliver_by} to {delivery.contact} in a one-time link "
                f"(delivery #{delivery.pk}, {delivery.status}, until {expires}); not shown here."
            )

    def do_extend(self, *, account_id, days, **_):
        self.stdout.write(self._show(license_extend(license=self._license(account_id), days=days)))

    def do_suspend(self, *, account_id, reason, **_):
        self.stdout.write(
            self._show(license_suspend(license=self._license(account_id), reason=reason))
        )

    def do_activate(self, *, account_id, **_):
        self.stdout.write(self._show(license_activate(license=self._license(account_id))))

    def do_list(self, *, license_type=None, **_):
        licenses = License.objects.all()
        if license_type:
            licenses = licenses.filter(license_type=license_type)
        for license in licenses.iterator():
            self.stdout.write(self._show(license))

    def do_init_admin(self, *, account_id, email, **_):
        if License.objects.filter(license_type=License.Type.ADMIN).exists():
            raise CommandError("an ADMIN license exists already: its key was shown when made")
        license, key = license_create(
            account_id=account_id,
            license_type=License.Type.ADMIN,
            email=email,
            notes="made by license init-admin",
        )
        self.stdout.write(self._show(license))
        self.stdout.write(f"ADMIN license key (shown once, keep it safe): {key}")

    def do_keygen(self, **_):
        self.stdout.write(new_private_key_b64())
