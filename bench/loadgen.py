"""The load generator: its own process, asyncio and raw HTTP/1.1 over asyncio streams.

Driven by ``bench/load.py`` over stdin/stdout, one JSON object per line each way. It knows
no Django and no database: it gets orders (``order_no``, amount in minor units, currency,
email) and the webhook secret, builds each ``checkout.session.completed`` event exactly like
``orders.payments.stripe_events`` does and signs it right before sending, so the timestamp
is fresh. Times are wall-clock ``time.time()``, the clock the shop's ``delivered_at`` uses.

gunicorn's sync workers close every connection after one response, so each request is a
new connection (``Connection: close``), as a webhook from Stripe would be.

    python bench/loadgen.py --port 8000 --secret whsec_…   (then JSON commands on stdin)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orders.payments.stripe_events import (  # noqa: E402 - after the path is set
    build_event,
    checkout_session_object,
    encode,
    sign_payload,
)

TIMEOUT = 30.0
WEBHOOK = "/payments/stripe/webhook"


class Http:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict | None = None
    ) -> tuple[int, bytes]:
        """``(status, body)``; status 0 for a connection error or a timeout."""
        try:
            return await asyncio.wait_for(self._request(method, path, body, headers), TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            return 0, b""

    async def _request(self, method, path, body, headers) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            lines = [
                f"{method} {path} HTTP/1.1",
                f"Host: {self.host}:{self.port}",
                "Connection: close",
                f"Content-Length: {len(body)}",
            ]
            lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head.lower():
            payload = _dechunk(payload)
        return status, payload


def _dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


def minor_units(amount: str) -> int:
    """``"9.90"`` → 990: the API prints the currency's exponent, so the digits are the units."""
    return int(amount.replace(".", ""))


class LoadGen:
    def __init__(self, port: int, secret: str):
        self.http = Http("127.0.0.1", port)
        self.secret = secret

    def event_payload(self, order: dict) -> bytes:
        obj = checkout_session_object(
            SimpleNamespace(
                order_no=order["order_no"],
                amount=order["amount"],
                currency=order["currency"],
                email=order["email"],
                checkout_session_id="",
            )
        )
        return encode(build_event("checkout.session.completed", obj))

    async def post_webhook(self, payload: bytes) -> tuple[float, float, int]:
        """Sign now, post; ``(sent_at, http_ms, status)``, status 0 if it could not be sent."""
        header = sign_payload(payload, self.secret)
        sent_at = time.time()
        status, _ = await self.http.request(
            "POST",
            WEBHOOK,
            payload,
            {"Content-Type": "application/json", "Stripe-Signature": header},
        )
        return sent_at, (time.time() - sent_at) * 1000, status

    # --- commands ------------------------------------------------------------------------------

    async def open_loop(self, orders: list[dict], rate: float, max_in_flight: int = 512) -> dict:
        """Webhooks at a fixed arrival rate, whatever the server does (open loop)."""
        loop = asyncio.get_running_loop()
        results: list = [None] * len(orders)
        lags: list[float] = []
        in_flight = 0
        skipped = 0

        async def one(i: int, order: dict) -> None:
            nonlocal in_flight
            try:
                results[i] = [
                    order["order_no"],
                    *await self.post_webhook(self.event_payload(order)),
                ]
            finally:
                in_flight -= 1

        tasks = []
        start = loop.time() + 0.05
        for i, order in enumerate(orders):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append((loop.time() - due) * 1000)
            if in_flight >= max_in_flight:  # the server is not taking connections any more
                skipped += 1
                results[i] = [order["order_no"], time.time(), 0.0, -1]
                continue
            in_flight += 1
            tasks.append(asyncio.create_task(one(i, order)))
        await asyncio.gather(*tasks)
        return {"sends": results, "lag_ms": lags, "skipped": skipped}

    async def burst(self, orders: list[dict], concurrency: int) -> dict:
        """Every webhook as fast as ``concurrency`` connections allow (saturation)."""
        results: list = [None] * len(orders)
        queue = iter(enumerate(orders))

        async def sender() -> None:
            for i, order in queue:
                results[i] = [
                    order["order_no"],
                    *await self.post_webhook(self.event_payload(order)),
                ]

        started = time.time()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        return {"sends": results, "seconds": time.time() - started}

    async def replay(self, orders: list[dict], copies: int, concurrency: int) -> dict:
        """Each event (one id) posted ``copies`` times at once, as Stripe's retries might."""
        statuses: Counter = Counter()
        sent: list = []
        gate = asyncio.Semaphore(concurrency)

        async def one(order: dict) -> None:
            payload = self.event_payload(order)
            async with gate:
                answers = await asyncio.gather(*(self.post_webhook(payload) for _ in range(copies)))
            statuses.update(str(status) for _, _, status in answers)
            sent.append([order["order_no"], min(a[0] for a in answers)])

        await asyncio.gather(*(one(order) for order in orders))
        return {"statuses": dict(statuses), "sends": sent}

    async def checkout(self, product: str, email: str, ip: str, ref: str = "") -> tuple[int, dict]:
        body = json.dumps({"product": product, "quantity": 1, "email": email, "ref": ref})
        status, answer = await self.http.request(
            "POST",
            "/api/v1/orders",
            body.encode(),
            {"Content-Type": "application/json", "X-Forwarded-For": ip},
        )
        try:
            data = json.loads(answer) if answer else {}
        except ValueError:
            data = {}
        return status, data

    async def checkouts(self, product: str, buyers: list[dict], ref: str = "") -> dict:
        """All checkouts at once (a race): ``buyers`` are ``{email, ip}``."""

        async def one(buyer: dict) -> dict:
            status, data = await self.checkout(product, buyer["email"], buyer["ip"], ref)
            return {"status": status, "code": data.get("code", ""), **buyer, **_order_of(data)}

        answers = await asyncio.gather(*(one(b) for b in buyers))
        return {"answers": answers}

    async def pay(self, orders: list[dict], concurrency: int) -> dict:
        return await self.burst(orders, concurrency)

    async def lookup(self, order_no: str, ip: str, *, email: str = "", password: str = ""):
        query = f"email={quote(email)}" if email else f"query_password={quote(password)}"
        return await self.http.request(
            "GET", f"/api/v1/orders/{order_no}?{query}", headers={"X-Forwarded-For": ip}
        )

    async def keys_of(self, orders: list[dict], concurrency: int = 8) -> dict:
        """Each order's keys as its buyer reads them (``GET /api/v1/orders/{no}?email=``)."""
        gate = asyncio.Semaphore(concurrency)
        out: dict[str, list] = {}

        async def one(order: dict) -> None:
            async with gate:
                status, body = await self.lookup(
                    order["order_no"], "198.51.100.9", email=order["email"]
                )
            out[order["order_no"]] = json.loads(body).get("keys", []) if status == 200 else []

        await asyncio.gather(*(one(o) for o in orders))
        return {"keys": out}

    async def lookups(
        self, order_no: str, count: int, seconds: float, ip: str, email="", password=""
    ) -> dict:
        """One buyer looking the same order up, one request after the other."""
        timings, statuses = [], Counter()
        deadline = time.monotonic() + seconds
        while len(timings) < count and time.monotonic() < deadline:
            started = time.perf_counter()
            status, _ = await self.lookup(order_no, ip, email=email, password=password)
            timings.append((time.perf_counter() - started) * 1000)
            statuses[str(status)] += 1
        return {"ms": timings, "statuses": dict(statuses)}

    async def closed_loop(
        self,
        *,
        buyers: int,
        seconds: float,
        product: str,
        ref: str,
        run: str,
        poll_interval: float = 0.01,
        order_timeout: float = 15.0,
    ) -> dict:
        """Buyers that each check out, pay (sign + post the webhook) and poll for the key."""
        pay_to_key, checkout_ms, polls = [], [], []
        errors: Counter = Counter()
        done = 0
        end = time.monotonic() + seconds

        async def buyer(b: int) -> None:
            nonlocal done
            i = 0
            while time.monotonic() < end:
                ip = f"172.{16 + b % 200}.{(i // 250) % 250}.{i % 250 + 1}"  # per buyer+round
                email = f"loop{b}-{i}-{run}@example.com"
                i += 1
                started = time.perf_counter()
                status, data = await self.checkout(product, email, ip, ref)
                checkout_ms.append((time.perf_counter() - started) * 1000)
                if status != 201:
                    errors[f"checkout {status} {data.get('code', '')}".strip()] += 1
                    await asyncio.sleep(0.05)
                    continue
                order = _order_of(data) | {"email": email}
                paid_at, _, status = await self.post_webhook(self.event_payload(order))
                if status != 200:
                    errors[f"webhook {status}"] += 1
                    continue
                n = 0
                while True:
                    n += 1
                    status, answer = await self.lookup(order["order_no"], ip, email=email)
                    if status == 200 and json.loads(answer).get("keys"):
                        pay_to_key.append((time.time() - paid_at) * 1000)
                        polls.append(n)
                        done += 1
                        break
                    if status != 200:
                        errors[f"lookup {status}"] += 1
                    if time.time() - paid_at > order_timeout:
                        errors["key not readable in time"] += 1
                        break
                    await asyncio.sleep(poll_interval)

        started = time.monotonic()
        await asyncio.gather(*(buyer(b) for b in range(buyers)))
        return {
            "seconds": time.monotonic() - started,
            "completed": done,
            "pay_to_key_ms": pay_to_key,
            "checkout_ms": checkout_ms,
            "polls": polls,
            "errors": dict(errors),
        }


def _order_of(data: dict) -> dict:
    if "order_no" not in data:
        return {}
    return {
        "order_no": data["order_no"],
        "amount": minor_units(data["amount"]),
        "currency": data["currency"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    gen = LoadGen(args.port, args.secret)
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers on the protocol channel
    for line in sys.stdin:
        command = json.loads(line)
        name = command.pop("cmd")
        if name == "quit":
            break
        try:
            answer = asyncio.run(getattr(gen, name)(**command))
        except Exception as exc:  # report, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
