"""Schemathesis hooks for Tollgate: the rules our own fuzzer (HTTPFuzzTests) holds the API to.

- no 5xx but a deliberate 503 engine_unavailable (schemathesis' not_a_server_error finds 5xx;
  the run keeps Redis up, so a 503 here is no deliberate one either);
- a request refused as a client error (4xx) changes nothing in Redis: DEBUG DIGEST of the
  server's Redis before the call equals the one after. Coupon redemptions and webhooks count
  failed attempts on purpose; /v1/check answers denials (decisions, which count) with
  401/403/429, so only its 400 is an input error.

Loaded with SCHEMATHESIS_HOOKS=schemathesis_hooks; TOLLGATE_FUZZ_REDIS_SOCKET names the unix
socket of the server's Redis (the test starts both).
"""
import os
import re
import subprocess

import schemathesis

SOCKET = os.environ["TOLLGATE_FUZZ_REDIS_SOCKET"]
COUNTING = re.compile(r"^/v1/accounts/[^/]+/redeem$|^/v1/webhooks/")
DIGESTS = {}


def digest():
    result = subprocess.run(["redis-cli", "-s", SOCKET, "DEBUG", "DIGEST"], capture_output=True, text=True, timeout=30, check=True)
    value = result.stdout.strip()
    # redis-cli exits 0 on an error reply too: a check that compared two errors could not fail.
    if not re.fullmatch(r"[0-9a-f]{40}", value):
        raise RuntimeError(f"cannot read DEBUG DIGEST of the server's Redis: {value or result.stderr.strip()}")
    return value


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    DIGESTS[id(case)] = digest()


@schemathesis.check
def no_state_change_on_client_error(ctx, response, case):
    path = case.operation.path
    status = response.status_code
    input_error = status == 400 if path == "/v1/check" else 400 <= status < 500
    if not input_error or COUNTING.search(case.formatted_path):
        return None
    before = DIGESTS.pop(id(case), None)
    if before is not None and digest() != before:
        raise AssertionError(f"{case.method} {case.formatted_path} answered {status} but changed Redis")
    return None
