"""`CasesEmulator`: Amazon Connect Cases for the real boto3 client, over HTTP on 127.0.0.1 or in process.

Speaks the service's REST-JSON protocol (from botocore's model), keeps state in memory, emits the
EventBridge events the service would, serves SearchCases and SearchAllRelatedItems from a search index
that lags writes (`_index`), and injects faults (forced or random 429/500s, the real quotas) for
resilience tests. Transports (`_transport`): `start()` serves HTTP; `attach(client)` (or
`client(in_process=True)`) answers a boto3 client's requests in process, through botocore's own
parsing and retries. With `access` (a `casewatch_dev.iam.AccessControl`), it authorizes every request as
Cases does: `cases:<Operation>` on the operation's resources (`_access`), under the policies of the
principal whose access key signed it; an unknown or missing key, or a denial, is answered 403
`AccessDeniedException`. Dev-only code: never deployed.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import boto3
from botocore.config import Config

from casewatch.adapters.system_clock import SystemClock
from casewatch.ports import Clock
from casewatch_dev.emulator._access import cases_authorization, signer
from casewatch_dev.emulator._events import NoFieldsAs
from casewatch_dev.emulator._index import SearchIndex
from casewatch_dev.emulator._protocol import (
    JSON,
    ApiError,
    error_body,
    error_code_for_status,
    match,
    parse_request,
    service_model,
    validate_input,
)
from casewatch_dev.emulator._service import CasesService, EmptyAs
from casewatch_dev.emulator._state import to_union
from casewatch_dev.emulator._transport import IN_PROCESS_ENDPOINT, HttpServer, InProcessTransport

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient

    from casewatch_dev.iam.access import AccessControl

logger = logging.getLogger(__name__)

# Per account and Region: (requests per second, burst).
GETCASE_QUOTA: Final = (4.0, 10)
REAL_QUOTAS: Final[Mapping[str, tuple[float, int]]] = {
    "GetCase": GETCASE_QUOTA,
    "SearchCases": (2.0, 10),
    "SearchRelatedItems": (2.0, 10),
    # Not in the quota table we have (CASES-EVENTS.md): assumed like the other searches until measured.
    "SearchAllRelatedItems": (2.0, 10),
    "PutCaseEventConfiguration": (2.0, 10),
}
# How long a change takes to reach search (`search_index_lag`). AWS: Connect changes "typically" propagate
# in "less than a few seconds", sometimes minutes; an indexer also refreshes about once a second. 3 s is
# the top of the typical case: a feed whose safety lag survives it is not tuned to an instant index.
DEFAULT_SEARCH_INDEX_LAG: Final = timedelta(seconds=3)
# `{account}` is filled in; pass None for events without an IAM principal.
DEFAULT_IAM_PRINCIPAL: Final = "arn:aws:sts::{account}:assumed-role/CasesEmulator/local"
_SAFE_PARAMS = ("domainId", "caseId", "templateId", "type", "maxResults", "nextToken")


@dataclass(frozen=True)
class CallRecord:
    """One request: the operation, an id-only summary of its input, and the HTTP status answered."""

    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    status: int = 200


def summarize(params: JSON) -> dict[str, Any]:
    """Ids and paging only: never field values, comment bodies or other case content."""
    out: dict[str, Any] = {k: params[k] for k in _SAFE_PARAMS if k in params}
    fields = params.get("fields")
    if isinstance(fields, list):
        out["fields"] = [f.get("id") for f in fields if isinstance(f, dict)]
    filters = params.get("filters")
    if isinstance(filters, list):
        out["filters"] = [next(iter(f), None) for f in filters if isinstance(f, dict)]
    sorts = params.get("sorts")
    if isinstance(sorts, list):
        out["sorts"] = [
            f"{s.get('fieldId') or s.get('sortProperty')} {s.get('sortOrder')}"
            for s in sorts
            if isinstance(s, dict)
        ]
    bridge = params.get("eventBridge")
    if isinstance(bridge, dict):
        out["enabled"] = bridge.get("enabled")
    return out


class TokenBucket:
    """`rate` tokens per second up to `burst`, on an injectable clock."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def take(self) -> bool:
        now = self._clock.now()
        elapsed = max((now - self._last).total_seconds(), 0.0)
        self._last = max(now, self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class CasesEmulator:
    """An in-memory Amazon Connect Cases: on an ephemeral 127.0.0.1 port as a context manager (or
    `start()`), and in process for the clients it is attached to (`attach`, `client(in_process=True)`)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int | None = None,
        account_id: str = "123456789012",
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        port: int = 0,
        getcase_quota: bool = False,
        quotas: Mapping[str, tuple[float, int]] | None = None,
        getcase_page_size: int = 100,
        empty_as: EmptyAs = "omit",
        no_fields_as: NoFieldsAs = "empty",
        throttle_rate: float = 0.0,
        error_rate: float = 0.0,
        fault_operations: Iterable[str] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        performed_by: str | None = None,
        iam_principal_arn: str | None = DEFAULT_IAM_PRINCIPAL,
        search_index_lag: timedelta = DEFAULT_SEARCH_INDEX_LAG,
        search_index_jitter: timedelta = timedelta(0),
        access: AccessControl | None = None,
    ) -> None:
        if getcase_page_size < 1:
            raise ValueError("getcase_page_size must be at least 1")
        self.clock: Clock = clock or SystemClock()
        self.account_id = account_id
        self.region = region
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._faults = random.Random(seed)  # noqa: S311 - seeded for reproducible tests
        self._index = SearchIndex(
            self.clock,
            lag=search_index_lag,
            jitter=search_index_jitter,
            rng=random.Random(f"search-index-{seed}"),  # noqa: S311 - seeded for reproducible tests
        )
        self._service = CasesService(
            clock=self.clock,
            ids=random.Random(seed),  # noqa: S311 - seeded for reproducible ids
            account_id=account_id,
            region=region,
            getcase_page_size=getcase_page_size,
            empty_as=empty_as,
            no_fields_as=no_fields_as,
            performed_by=performed_by,
            iam_principal_arn=iam_principal_arn.format(account=account_id) if iam_principal_arn else None,
            index=self._index,
        )
        limits = dict(quotas or {})
        if getcase_quota:
            limits.setdefault("GetCase", GETCASE_QUOTA)
        self._buckets = {op: TokenBucket(rate, burst, self.clock) for op, (rate, burst) in limits.items()}
        self.throttle_rate = throttle_rate
        self.error_rate = error_rate
        self.fault_operations = fault_operations
        self._forced: dict[str, deque[str]] = {}
        self.access = access  # None: every request is allowed
        self.calls: Counter[str] = Counter()
        self.call_log: list[CallRecord] = []
        self.emitted: list[dict[str, Any]] = []
        self._on_event = on_event or self.emitted.append
        self._in_process = InProcessTransport(self)
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        """Serve in a background thread (idempotent)."""
        with self._lock:
            if self._server is None:
                server = HttpServer((self._host, self._port), self)
                self._thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name="cases-emulator",
                    daemon=True,
                )
                self._server = server
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` of the running server."""
        server = self._server
        if server is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return f"http://{self._host}:{server.server_address[1]}"

    def client(self, config: Config | None = None, *, in_process: bool = False) -> ConnectCasesClient:
        """A boto3 `connectcases` client for it (standard retries, 1 attempt unless `config` says): over
        HTTP to the running server, or `in_process` (no server needed: see `attach`)."""
        base = Config(retries={"mode": "standard", "total_max_attempts": 1})
        with _SESSION_LOCK:  # a shared session caches the loaded models; creating clients is not thread-safe
            client: ConnectCasesClient = _session().client(
                "connectcases",
                endpoint_url=IN_PROCESS_ENDPOINT if in_process else self.url,
                region_name=self.region,
                aws_access_key_id="x",
                aws_secret_access_key="x",  # noqa: S106 - a dummy for a local endpoint
                config=base.merge(config) if config is not None else base,
            )
        return self.attach(client) if in_process else client

    def attach(self, client: ConnectCasesClient) -> ConnectCasesClient:
        """Answer `client`'s requests in process, whatever its endpoint (e.g. the product's own client,
        `casewatch.adapters.clients.cases_client()`): no socket, and still botocore's serialization,
        parsing, modeled errors, retries and rate limiter. Replaces an emulator attached before.
        Returns `client`."""
        self._in_process.attach(client)
        return client

    @staticmethod
    def detach(client: ConnectCasesClient) -> None:
        """Let `client` send its requests to its endpoint again."""
        InProcessTransport.detach(client)

    # -- knobs ---------------------------------------------------------------------------------
    @property
    def throttle_rate(self) -> float:
        """Probability that a call (of `fault_operations`) is answered 429 ThrottlingException."""
        return self._throttle_rate

    @throttle_rate.setter
    def throttle_rate(self, value: float) -> None:
        self._throttle_rate = _probability(value)

    @property
    def error_rate(self) -> float:
        """Probability that a call (of `fault_operations`) is answered 500 InternalServerException."""
        return self._error_rate

    @error_rate.setter
    def error_rate(self, value: float) -> None:
        self._error_rate = _probability(value)

    @property
    def fault_operations(self) -> frozenset[str] | None:
        """Operations the random faults apply to (None: all)."""
        return self._fault_operations

    @fault_operations.setter
    def fault_operations(self, value: Iterable[str] | None) -> None:
        names = None if value is None else frozenset(value)
        for name in names or ():
            _check_operation(name)
        self._fault_operations = names

    @property
    def empty_as(self) -> EmptyAs:
        """How GetCase/SearchCases report a field without a value: omitted, or `emptyValue`."""
        return self._service.empty_as

    @empty_as.setter
    def empty_as(self, value: EmptyAs) -> None:
        self._service.empty_as = value

    @property
    def search_index_lag(self) -> timedelta:
        """How long after a change SearchCases and SearchAllRelatedItems see it (on `clock`; setting it
        applies to the changes made from then on, and at once to SLA statuses, evaluated `lag` ago)."""
        return self._index.lag

    @search_index_lag.setter
    def search_index_lag(self, value: timedelta) -> None:
        with self._lock:
            self._index.lag = value

    @property
    def search_index_jitter(self) -> timedelta:
        """Up to this much more lag per change, seeded: changes then reach search out of order."""
        return self._index.jitter

    @search_index_jitter.setter
    def search_index_jitter(self, value: timedelta) -> None:
        with self._lock:
            self._index.jitter = value

    def flush_search_index(self) -> None:
        """Index every change made so far now, as if the lag had passed (for tests on a wall clock)."""
        with self._lock:
            self._index.flush()

    @property
    def getcase_page_size(self) -> int:
        return self._service.getcase_page_size

    @getcase_page_size.setter
    def getcase_page_size(self, value: int) -> None:
        if value < 1:
            raise ValueError("getcase_page_size must be at least 1")
        self._service.getcase_page_size = value

    def fail_next(self, operation: str, status: int = 429, count: int = 1) -> None:
        """Answer the next `count` calls of `operation` with the modeled error of HTTP `status`."""
        _check_operation(operation)
        code = error_code_for_status(status)
        with self._lock:
            self._forced.setdefault(operation, deque()).extend([code] * count)

    def reset_counters(self) -> None:
        """Forget the call counts and the call log."""
        with self._lock:
            self.calls.clear()
            self.call_log.clear()

    # -- direct seeding (no HTTP, no counting, no faults) --------------------------------------
    def seed_domain(self, domain_id: str | None = None, name: str | None = None) -> str:
        with self._lock:
            chosen = domain_id or self._service.new_id()
            return self._service.create_domain(name or f"domain-{chosen[:8]}", chosen).domain_id

    def seed_field(
        self,
        domain_id: str,
        name: str,
        type: str = "Text",
        field_id: str | None = None,
        *,
        description: str | None = None,
    ) -> str:
        with self._lock:
            domain = self._service.domain(domain_id)
            return self._service.create_field(
                domain, name, type, field_id=field_id, description=description
            ).field_id

    def seed_template(
        self,
        domain_id: str,
        name: str,
        template_id: str | None = None,
        *,
        required_fields: Iterable[str] = (),
    ) -> str:
        with self._lock:
            domain = self._service.domain(domain_id)
            return self._service.create_template(
                domain, name, template_id=template_id, required_fields=list(required_fields)
            ).template_id

    def seed_case(
        self,
        domain_id: str,
        template_id: str,
        fields: Mapping[str, object] | None = None,
        *,
        case_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        performed_by: str | None = None,
        emit: bool = False,
    ) -> str:
        """A case with `fields` (Python values or FieldValueUnion dicts); read-only fields allowed."""
        with self._lock:
            domain = self._service.domain(domain_id)
            entries = [
                {"id": fid, "value": to_union(v, domain.fields[fid].type if fid in domain.fields else "Text")}
                for fid, v in (fields or {}).items()
            ]
            user = {"userArn": performed_by} if performed_by else None
            case = self._service.create_case(
                domain,
                template_id,
                entries,
                tags=dict(tags or {}),
                user=user,
                case_id=case_id,
                enforce=False,
                emit=emit,
            )
            pending = self._drain()
        self._deliver(pending)
        return case.case_id

    def seed_related_item(
        self,
        domain_id: str,
        case_id: str,
        type: str,
        content: JSON,
        *,
        emit: bool = False,
    ) -> str:
        """A related item, e.g. `("Comment", {"comment": {"body": ..., "contentType": "Text/Plain"}})`."""
        with self._lock:
            domain = self._service.domain(domain_id)
            case = self._service.case(domain, case_id)
            if emit:
                created = self._service.op_CreateRelatedItem(
                    {"domainId": domain_id, "caseId": case_id, "type": type, "content": content}
                )
                item_id = str(created["relatedItemId"])
            else:
                item_id = self._service.create_related_item(domain, case, type, content, None).related_item_id
            pending = self._drain()
        self._deliver(pending)
        return item_id

    def set_event_configuration(
        self,
        domain_id: str,
        *,
        enabled: bool = True,
        fields: Iterable[str] = (),
        auto_include: Literal["All", "System", "Custom"] | None = None,
        include_content: bool | None = None,
    ) -> None:
        """What PutCaseEventConfiguration would store."""
        included: JSON = {}
        field_list = [{"id": f} for f in fields]
        if field_list or auto_include:
            case_data: JSON = {"fields": field_list}
            if auto_include:
                case_data["autoIncludeFields"] = auto_include
            included["caseData"] = case_data
        if include_content is not None:
            included["relatedItemData"] = {"includeContent": include_content}
        bridge: JSON = {"enabled": enabled}
        if included:
            bridge["includedData"] = included
        with self._lock:
            self._service.op_PutCaseEventConfiguration({"domainId": domain_id, "eventBridge": bridge})

    def case_values(self, domain_id: str, case_id: str) -> dict[str, JSON]:
        """A copy of the stored field values of a case (for assertions)."""
        with self._lock:
            case = self._service.case(self._service.domain(domain_id), case_id)
            return json.loads(json.dumps(case.fields))  # type: ignore[no-any-return]

    def export_state(self) -> dict[str, Any]:
        """Every domain, field, template, case and related item as JSON (see `load_state`)."""
        from casewatch_dev.emulator._persist import dump_domains

        with self._lock:
            return dump_domains(self._service.domains)

    def load_state(self, state: dict[str, Any]) -> None:
        """Replace the emulator's data with an `export_state()` document (e.g. an archive's companion)."""
        from casewatch_dev.emulator._persist import load_domains

        domains = load_domains(state)
        with self._lock:
            self._service.domains.clear()
            self._service.domains.update(domains)
            self._index.replace_all(domains)  # Cases as it was before: indexed long ago

    def case_record(self, domain_id: str, case_id: str) -> dict[str, Any]:
        """One case as stored now (fields, related items, SLA times): a ground-truth snapshot."""
        from casewatch_dev.emulator._persist import dump_case

        with self._lock:
            return dump_case(self._service.case(self._service.domain(domain_id), case_id))

    def put_case_record(self, domain_id: str, record: dict[str, Any]) -> None:
        """Make a case exactly `record` (a `case_record`), emitting nothing: Cases' truth moved on
        (search sees it after the index lag, like any change)."""
        from casewatch_dev.emulator._persist import load_case

        case = load_case(record)
        with self._lock:
            self._service.domain(domain_id).cases[case.case_id] = case
            self._index.record(domain_id, case.case_id, case)

    def remove_case(self, domain_id: str, case_id: str) -> None:
        """Delete a case without emitting an event (search drops it after the index lag)."""
        with self._lock:
            if self._service.domain(domain_id).cases.pop(case_id, None) is not None:
                self._index.record(domain_id, case_id, None)

    def domain_ids(self) -> list[str]:
        with self._lock:
            return list(self._service.domains)

    # -- the request path ----------------------------------------------------------------------
    def handle(
        self, method: str, path: str, body: bytes, request_headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request: (status, headers, body). Transport-free, so usable without a socket.
        `request_headers` identify the caller (its SigV4 `Authorization`) when `access` is set."""
        request_id = str(uuid.uuid4())
        pending: list[JSON] = []
        with self._lock:
            status, headers, payload = self._handle_locked(method, path, body, request_headers or {})
            pending = self._drain()
        self._deliver(pending)
        headers["x-amzn-RequestId"] = request_id
        return status, headers, payload

    def _handle_locked(
        self, method: str, path: str, body: bytes, request_headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        operation_name = "Unknown"
        summary: dict[str, Any] = {}
        try:
            operation, labels, query = match(method, path)
            operation_name = operation.name
            self.calls[operation_name] += 1
            params = parse_request(operation, labels, query, body)
            summary = summarize(params)
            self._authorize(operation_name, params, request_headers)
            fault = self._injected_fault(operation_name)
            if fault is not None:
                raise fault
            validate_input(operation, params)
            handler = self._service.handler(operation_name)
            if handler is None:
                raise ApiError(
                    "NotImplementedException", f"the Cases emulator does not implement {operation_name}"
                )
            output = {k: v for k, v in handler(params).items() if v is not None}
            status = int(operation.http.get("responseCode", 200))
            result = status, {"Content-Type": "application/json"}, json.dumps(output).encode()
        except ApiError as error:
            self._service.outbox.clear()
            result = error_body(error)
        except Exception:  # a bug in the emulator: answer like the service would, and log it
            logger.exception("cases-emulator: %s failed", operation_name)
            self._service.outbox.clear()
            result = error_body(ApiError("InternalServerException", "internal error in the Cases emulator"))
        self.call_log.append(CallRecord(operation_name, summary, result[0]))
        return result

    def _authorize(self, operation: str, params: JSON, headers: Mapping[str, str]) -> None:
        if self.access is None:
            return
        key = signer(headers)
        resources = cases_authorization(operation, params, account=self.account_id, region=self.region)
        context = {"aws:RequestedRegion": self.region}
        denial = self.access.authorize(key, f"cases:{operation}", resources, context)
        if denial is not None:
            principal = self.access.principal(key)
            arn = principal.arn if principal is not None else "anonymous"
            raise ApiError("AccessDeniedException", denial.message(arn))

    def _injected_fault(self, operation: str) -> ApiError | None:
        forced = self._forced.get(operation)
        if forced:
            return ApiError(forced.popleft(), "Injected fault")
        if self._fault_operations is None or operation in self._fault_operations:
            if self._throttle_rate and self._faults.random() < self._throttle_rate:
                return ApiError("ThrottlingException", "Rate exceeded")
            if self._error_rate and self._faults.random() < self._error_rate:
                return ApiError("InternalServerException", "Injected internal error")
        bucket = self._buckets.get(operation)
        if bucket is not None and not bucket.take():
            return ApiError("ThrottlingException", "Rate exceeded")
        return None

    def _drain(self) -> list[JSON]:
        pending = list(self._service.outbox)
        self._service.outbox.clear()
        return pending

    def _deliver(self, pending: list[JSON]) -> None:
        for event in pending:
            try:
                self._on_event(event)
            except Exception:  # delivery is best effort, as in AWS
                logger.exception("cases-emulator: the event sink failed")


_SESSION_LOCK = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("a rate is a probability between 0 and 1")
    return float(value)


def _check_operation(name: str) -> None:
    if name not in service_model().operation_names:
        raise ValueError(f"{name!r} is not a Cases operation")


__all__ = [
    "DEFAULT_IAM_PRINCIPAL",
    "DEFAULT_SEARCH_INDEX_LAG",
    "GETCASE_QUOTA",
    "IN_PROCESS_ENDPOINT",
    "REAL_QUOTAS",
    "CallRecord",
    "CasesEmulator",
    "TokenBucket",
    "summarize",
]
