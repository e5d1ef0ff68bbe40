"""The trading API: the caller's own broker accounts, sessions, trades and channel
subscriptions, and the signal intake for staff and integration keys.

Every queryset here is the caller's own rows: another user's account, session or trade is a
404, for staff too (staff see everyone's in the admin, not through this API).
"""

from django.http import Http404
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import area_permission
from core.errors import NotFoundError
from core.money import MAX_BIGINT

from .. import services
from ..errors import UnknownChannelError
from ..models import BrokerAccount, ChannelSubscription, Signal, SignalChannel, Trade
from ..models import TradingSession as Session
from ..selectors import session_status, trade_statistics
from . import serializers as s
from .filters import TradeFilter

NOT_FOUND = OpenApiResponse(s.TradingErrorSerializer, description="Not found, or not yours.")
QUOTA_EXCEEDED = OpenApiResponse(s.QuotaErrorSerializer, description="Over the plan's quota.")


def _conflict(description: str) -> OpenApiResponse:
    return OpenApiResponse(s.TradingErrorSerializer, description=description)


class OwnRowsMixin:
    """The caller's own rows only; an id that is not theirs answers 404 with a code."""

    lookup_value_regex = r"\d+"
    not_found = ("Not found.", "not_found")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset.none()
        return self.queryset.filter(user=self.request.user)

    def get_object(self):
        detail, code = self.not_found
        if int(self.kwargs[self.lookup_field]) > MAX_BIGINT:
            raise NotFoundError(detail, code=code)
        try:
            return super().get_object()
        except Http404 as exc:
            raise NotFoundError(detail, code=code) from exc


@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class BrokerAccountViewSet(
    OwnRowsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Your logins on the broker. The password is write-only: no answer ever contains it."""

    queryset = BrokerAccount.objects.all()
    serializer_class = s.BrokerAccountSerializer
    not_found = ("No such broker account.", "account_not_found")

    @extend_schema(
        request=s.BrokerAccountInputSerializer,
        responses={201: s.BrokerAccountSerializer, 409: QUOTA_EXCEEDED},
        description="Store a broker login (within your plan's accounts) and check it at once.",
    )
    def create(self, request):
        data = s.BrokerAccountInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.broker_account_create(user=request.user, **data.validated_data)
        return Response(s.BrokerAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.BrokerAccountUpdateSerializer,
        responses={200: s.BrokerAccountSerializer, 404: NOT_FOUND},
    )
    def update(self, request, pk=None):
        return self._update(request, partial=False)

    @extend_schema(
        request=s.BrokerAccountUpdateSerializer,
        responses={200: s.BrokerAccountSerializer, 404: NOT_FOUND},
    )
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        account = self.get_object()
        data = s.BrokerAccountUpdateSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        account = services.broker_account_update(account=account, **data.validated_data)
        return Response(s.BrokerAccountSerializer(account).data)

    @extend_schema(
        request=None,
        responses={
            204: None,
            404: NOT_FOUND,
            409: _conflict("A running session or past trades use the account."),
        },
    )
    def destroy(self, request, pk=None):
        services.broker_account_delete(account=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={200: s.ConnectionTestSerializer, 404: NOT_FOUND},
        description="Log in at the broker now and record the outcome and balance.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        account = services.broker_account_check(account=self.get_object())
        out = {
            "connected": account.connection_status == BrokerAccount.Connection.CONNECTED,
            "balance": account.last_balance,
            "connection_status": account.connection_status,
        }
        return Response(s.ConnectionTestSerializer(out).data)

    @extend_schema(
        responses={200: s.BalanceSerializer, 404: NOT_FOUND},
        description="The balance from the broker now, or the last one known (fresh: false) "
        "when the broker does not answer.",
    )
    @action(detail=True, methods=["get"])
    def balance(self, request, pk=None):
        answer = services.broker_account_balance(account=self.get_object())
        out = {"balance": answer.balance, "fresh": answer.fresh, "checked_at": answer.checked_at}
        return Response(s.BalanceSerializer(out).data)


class SessionViewSet(
    OwnRowsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Your automated sessions. Editing a running session applies from its next start."""

    queryset = Session.objects.select_related("account")
    serializer_class = s.SessionSerializer
    not_found = ("No such session.", "session_not_found")

    @extend_schema(
        request=s.SessionInputSerializer,
        responses={201: s.SessionSerializer, 404: NOT_FOUND},
        description="A new, stopped session on one of your broker accounts.",
    )
    def create(self, request):
        data = s.SessionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_create(user=request.user, **data.validated_data)
        return Response(s.SessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.SessionInputSerializer,
        responses={
            200: s.SessionSerializer,
            404: NOT_FOUND,
            409: _conflict("A running session cannot move to another account."),
        },
    )
    def update(self, request, pk=None):
        return self._update(request, partial=False)

    @extend_schema(
        request=s.SessionInputSerializer,
        responses={
            200: s.SessionSerializer,
            404: NOT_FOUND,
            409: _conflict("A running session cannot move to another account."),
        },
    )
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        session = self.get_object()
        data = s.SessionInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        session = services.session_update(session=session, **data.validated_data)
        return Response(s.SessionSerializer(session).data)

    @extend_schema(
        request=None,
        responses={204: None, 404: NOT_FOUND, 409: _conflict("Stop the session first.")},
    )
    def destroy(self, request, pk=None):
        services.session_delete(session=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={
            200: s.SessionStatusSerializer,
            400: OpenApiResponse(
                s.GaleExposureErrorSerializer,
                description="gale_exposure: the full ladder could lose more than the stop "
                "loss or the balance.",
            ),
            404: NOT_FOUND,
            409: QUOTA_EXCEEDED,
        },
        description="Start a run (starting a running session changes nothing).",
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        session = services.session_start(session=self.get_object())
        return Response(s.SessionStatusSerializer(session_status(session)).data)

    @extend_schema(request=None, responses={200: s.SessionStatusSerializer, 404: NOT_FOUND})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        session = services.session_stop(session=self.get_object(), reason=Session.StopReason.MANUAL)
        return Response(s.SessionStatusSerializer(session_status(session)).data)

    @extend_schema(responses={200: s.SessionStatusSerializer, 404: NOT_FOUND})
    @action(detail=True, methods=["get"], url_path="status")
    def run_status(self, request, pk=None):
        session = self.get_object()
        return Response(s.SessionStatusSerializer(session_status(session)).data)


class TradeViewSet(
    OwnRowsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Your trades, from signals or placed by hand, and their statistics."""

    queryset = Trade.objects.all()
    serializer_class = s.SessionTradeSerializer
    filterset_class = TradeFilter
    not_found = ("No such trade.", "trade_not_found")

    @extend_schema(
        request=s.ManualTradeInputSerializer,
        responses={
            201: s.SessionTradeSerializer,
            400: OpenApiResponse(
                s.TradingErrorSerializer, description="loss_budget_exceeded, invalid_asset, ..."
            ),
            404: NOT_FOUND,
            409: OpenApiResponse(
                s.TradingErrorSerializer,
                description="quota_exceeded (trades per day, open positions) or "
                "session_not_active.",
            ),
        },
        description="Place a trade by hand on one of your running sessions.",
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def manual(self, request):
        data = s.ManualTradeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        trade = services.trade_manual(user=request.user, **data.validated_data)
        return Response(s.SessionTradeSerializer(trade).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[s.StatisticsQuerySerializer],
        responses={200: s.StatisticsSerializer, 404: NOT_FOUND},
        description="Settled trades in a named period or a since/until range, by UTC day of "
        "settlement. 400 `period_and_range` for both, `invalid_range` when since is not "
        "before until.",
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def statistics(self, request):
        query = s.StatisticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        session_id = query.validated_data.get("session_id")
        own = Session.objects.filter(user=request.user, pk=session_id)
        if session_id is not None and not own.exists():
            raise NotFoundError("No such session.", code="session_not_found")
        stats = trade_statistics(
            user=request.user,
            session_id=session_id,
            period=query.validated_data["period"],
            since=query.validated_data.get("since"),
            until=query.validated_data.get("until"),
        )
        return Response(s.StatisticsSerializer(stats).data)


def _subscriptions(user) -> dict:
    return {
        "subscriptions": ChannelSubscription.objects.filter(user=user).select_related("channel"),
        "channels": SignalChannel.objects.filter(is_active=True),
    }


CHANNEL_PARAMETER = OpenApiParameter(
    "channel", str, description="The channel's code (or in the body)."
)


class SignalSubscriptionsView(APIView):
    """The channels whose signals your sessions take, and those you may subscribe to."""

    @extend_schema(responses=s.SubscriptionsSerializer)
    def get(self, request):
        return Response(s.SubscriptionsSerializer(_subscriptions(request.user)).data)


class SignalSubscribeView(APIView):
    @extend_schema(
        request=s.ChannelInputSerializer,
        responses={
            200: OpenApiResponse(s.SubscriptionsSerializer, description="Subscribed already."),
            201: s.SubscriptionsSerializer,
            400: OpenApiResponse(s.TradingErrorSerializer, description="unknown_channel"),
            409: QUOTA_EXCEEDED,
        },
        description="Your sessions take this channel's signals (within your plan's channels).",
    )
    def post(self, request):
        data = s.ChannelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code = data.validated_data["channel"]
        _, created = services.channel_subscribe(user=request.user, channel_code=code)
        return Response(
            s.SubscriptionsSerializer(_subscriptions(request.user)).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SignalUnsubscribeView(APIView):
    @extend_schema(
        request=s.ChannelInputSerializer,
        parameters=[CHANNEL_PARAMETER],
        responses={
            200: s.SubscriptionsSerializer,
            400: OpenApiResponse(s.TradingErrorSerializer, description="unknown_channel"),
            404: OpenApiResponse(s.TradingErrorSerializer, description="not_subscribed"),
        },
        description="Stop taking a channel's signals. The channel in the body or `?channel=`.",
    )
    def delete(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        channel = body.get("channel", request.query_params.get("channel"))
        data = s.ChannelInputSerializer(data={"channel": channel})
        data.is_valid(raise_exception=True)
        code = data.validated_data["channel"]
        if not SignalChannel.objects.filter(code=code).exists():
            raise UnknownChannelError(f"No signal channel {code!r}.")
        if not services.channel_unsubscribe(user=request.user, channel_code=code):
            raise NotFoundError("You are not subscribed to this channel.", code="not_subscribed")
        return Response(s.SubscriptionsSerializer(_subscriptions(request.user)).data)


class SignalViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The signal intake (staff and integration keys) and the recent signals' fan-outs."""

    queryset = Signal.objects.select_related("channel")
    serializer_class = s.SignalSerializer
    permission_classes = [area_permission("signals.send")]

    @extend_schema(
        request=s.SignalInputSerializer,
        responses={
            201: s.SignalReceivedSerializer,
            200: OpenApiResponse(
                s.SignalReceivedSerializer,
                description="This (channel, ref) was received before: nothing new happened.",
            ),
            400: OpenApiResponse(
                s.TradingErrorSerializer,
                description="unknown_channel, invalid_asset, invalid_duration, invalid_sent_at",
            ),
        },
        description="Fan a signal out to every active session subscribed to its channel, "
        "once per (signal, session). A stale one is recorded with its reason and trades "
        "nothing.",
    )
    def create(self, request):
        data = s.SignalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        outcome = services.signal_receive(
            channel=services.channel_get(code=values["channel"]),
            asset=values["asset"],
            direction=values["direction"],
            duration=values["duration"],
            sent_at=values.get("sent_at"),
            ref=values.get("ref") or None,
            source=Signal.Source.API,
            sent_by=request.user,
        )
        signal = outcome.signal
        out = {
            "signal_id": signal.pk,
            "sessions_targeted": signal.sessions_targeted,
            "trades_created": signal.trades_created,
            "sessions_skipped": signal.sessions_skipped,
            "status": signal.status,
            "skip_reason": signal.skip_reason,
            "fanout_ms": signal.fanout_ms,
        }
        return Response(
            s.SignalReceivedSerializer(out).data,
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )
