"""Deciding on a bonus approval (see `limits`): a Super Admin who is not the requester
approves (the grant is re-run now: eligibility, the deal still unused) or rejects it, in one
conditional UPDATE so that two decisions at once decide once. Both are audited."""

from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from accounts.services import audit_record, user_roles
from bonuses.models import BonusApproval
from core.errors import ApplicationError, ConflictError, ForbiddenError

from .common import atomic_for, logger
from .common import read_account as _read_account
from .grants import approved_grant
from .ledger import operation_execute
from .limits import approval_state


def bonus_approval_approve(*, approval: BonusApproval, actor, reason: str = "") -> BonusApproval:
    """Approve and grant, re-running the grant's checks now. Only a Super Admin who is not
    the requester (403 `permission_denied` / `same_person`); decided already: 409
    `already_decided`. A grant refused now leaves the approval `failed` and raises why."""
    _check_decider(approval=approval, actor=actor)
    account = _read_account(approval.login)
    problem: ApplicationError | None = None
    operation = None
    with atomic_for(approval.login):
        _claim(approval=approval, actor=actor, status=BonusApproval.Status.APPROVED, reason=reason)
        approval.refresh_from_db()
        try:
            with transaction.atomic():
                bonus, operation = approved_grant(approval=approval, account=account, actor=actor)
        except ApplicationError as exc:
            problem = exc
            approval.status = BonusApproval.Status.FAILED
            approval.failure_code = exc.code
            approval.failure_detail = exc.detail
            approval.save(update_fields=["status", "failure_code", "failure_detail"])
            verb = "failed"
        else:
            approval.bonus = bonus
            approval.save(update_fields=["bonus"])
            verb = "approved"
        audit_record(
            action=f"bonus_approval.{verb}",
            obj=approval,
            actor=actor,
            mt5_login=approval.login,
            before={"status": BonusApproval.Status.PENDING},
            after=approval_state(approval),
            reason=reason,
        )
    if problem is not None:
        logger.info("approval %s approved but not granted: %s", approval.pk, problem.code)
        raise problem
    assert operation is not None  # no problem: the grant ran and made its operation
    operation_execute(operation)
    approval.refresh_from_db()
    return approval


def bonus_approval_reject(*, approval: BonusApproval, actor, reason: str = "") -> BonusApproval:
    """Reject a pending request: nothing is granted. Same deciders as approving."""
    _check_decider(approval=approval, actor=actor)
    with transaction.atomic():
        _claim(approval=approval, actor=actor, status=BonusApproval.Status.REJECTED, reason=reason)
        approval.refresh_from_db()
        audit_record(
            action="bonus_approval.rejected",
            obj=approval,
            actor=actor,
            mt5_login=approval.login,
            before={"status": BonusApproval.Status.PENDING},
            after=approval_state(approval),
            reason=reason,
        )
    return approval


def _check_decider(*, approval: BonusApproval, actor) -> None:
    if Role.SUPER_ADMIN not in user_roles(actor):
        raise ForbiddenError("Only a Super Admin decides on a bonus approval.")
    if actor.pk == approval.requested_by_id:
        raise ForbiddenError(
            "The requester cannot decide on their own request: another Super Admin must.",
            code="same_person",
        )


def _claim(*, approval: BonusApproval, actor, status: str, reason: str) -> None:
    # One conditional UPDATE: of two decisions at once, exactly one finds it pending.
    claimed = BonusApproval.objects.filter(
        pk=approval.pk, status=BonusApproval.Status.PENDING
    ).update(status=status, decided_by=actor, decided_at=timezone.now(), decision_reason=reason)
    if claimed != 1:
        current = BonusApproval.objects.filter(pk=approval.pk).values_list("status", flat=True)
        raise ConflictError(
            f"Approval #{approval.pk} is already decided ({current.first()}).",
            code="already_decided",
        )
