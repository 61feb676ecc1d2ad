#!/usr/bin/env python3
"""The fault suite's driver (scripts/faults starts the private stack and runs it).

Each scenario sets up a small drop through the public API, injects one fault while it runs, lets
things settle, and runs one read-only consistency check (`check`) of MySQL, Redis and the fake
PortOne; it prints one line "fault → what happened". Faults are injected only into this stack:
its own Redis server (stopped and restarted), the MariaDB connections of its own database
(killed by id, never anyone else's), its own fake PortOne (`/_fake/faults`) and its own SQS queue.

Test setup that is not the public API, each labelled where it happens:
- the settlement queue's visibility timeout is lowered to a few seconds on this private moto,
  so a partition that failed comes back within the suite instead of after 6 minutes;
- orders the suite confirmed through the API are moved back one or two days in MySQL (every
  timestamp of the order, the same amount), so that an ended day has orders to settle;
- `order-sweeper` is fired on demand (`POST /_local/schedules/order-sweeper`, as the runner fires
  it every minute) when a scenario lets things settle.
"""

import argparse
import collections
import concurrent.futures
import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

PASSWORD = "kicksync-demo-1"
SEOUL = datetime.timezone(datetime.timedelta(hours=9))
LIVE = ("PAID", "SHIPPED", "CONFIRMED")
HOLDING = ("PENDING_PAYMENT",) + LIVE

ARGS = None


# ---------------------------------------------------------------------------
# Talking to the stack
# ---------------------------------------------------------------------------
def call(base, method, path, body=None, token=None, headers=None, timeout=30):
    """(status, parsed body) of one HTTP call; a connection that fails is status 0."""
    request = urllib.request.Request(base + path, method=method)
    request.add_header("accept", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, data=data, timeout=timeout) as response:
            return response.status, parse(response.read())
    except urllib.error.HTTPError as error:
        return error.code, parse(error.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return 0, {"error": str(error)}


def parse(raw):
    try:
        return json.loads(raw.decode() or "null")
    except ValueError:
        return {"raw": raw.decode(errors="replace")}


def api(method, path, body=None, token=None, headers=None, timeout=30):
    return call(ARGS.base, method, path, body, token, headers, timeout)


def fake(method, path, body=None, secret=False):
    headers = {"authorization": f"PortOne {os.environ['PORTONE_API_SECRET']}"} if secret else None
    return call(ARGS.portone, method, path, body, headers=headers)


def must(what, answer, *statuses):
    status, body = answer
    if status not in statuses:
        sys.exit(f"{what}: expected {statuses}, got {status} {body}")
    return body


def sql(query, database=True):
    """Rows of a query, as lists of strings (NULL is None), through the mariadb client."""
    command = [ARGS.db_client, "--no-defaults", "-uroot", "-h127.0.0.1", f"-P{os.environ.get('DB_PORT', '3306')}",
               "-N", "-B", "-e", query]
    if database:
        command[2:2] = ["-D", ARGS.database]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [[None if cell == "NULL" else cell for cell in line.split("\t")] for line in out.splitlines()]


def redis(*arguments):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(ARGS.redis_port), *map(str, arguments)],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def counter(product_id):
    """The Redis stock counter of a product, or None when it is not loaded."""
    value = redis("HGET", f"{os.environ['REDIS_KEY_PREFIX']}stock:{{p{product_id}}}", "remaining")
    return int(value) if value.lstrip("-").isdigit() else None


def stock_remaining(product_id):
    return int(sql(f"SELECT stock_remaining FROM products WHERE id = {int(product_id)}")[0][0])


def fire(schedule):
    return api("POST", f"/_local/schedules/{schedule}")


def login(email, password=PASSWORD):
    return must(f"login {email}", api("POST", "/auth/login", {"email": email, "password": password}), 200)[
        "access_token"]


def new_buyers(count, run):
    def one(n):
        email = f"faults-{run}-{n}@example.com"
        must("sign-up", api("POST", "/auth/signup", {"email": email, "password": PASSWORD,
                                                     "name": f"Buyer {n}", "role": "buyer"}), 201)
        return email, login(email)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(count)))


def list_product(partner, units, price, name):
    release_at = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)).isoformat()
    return must("listing a product", api("POST", "/products", {
        "name": f"{name} {uuid.uuid4().hex[:6]}", "brand": "KickSync", "price": price,
        "release_at": release_at, "stock": units, "max_per_buyer": 1}, token=partner), 201)


def checkout(token, product_ids, key=None):
    key = key or uuid.uuid4().hex
    answer = api("POST", "/orders", {"items": [{"product_id": p, "quantity": 1} for p in product_ids]},
                 token=token, headers={"idempotency-key": key})
    return key, answer


def outcome(answer):
    status, body = answer
    code = body.get("code") if isinstance(body, dict) else None
    return f"{status} {code}" if code else str(status)


def tally(answers):
    counted = collections.Counter(outcome(answer) for answer in answers)
    return ", ".join(f"{n}× {what}" for what, n in sorted(counted.items()))


def expect(conditions):
    """The descriptions of the conditions that do not hold."""
    return [what for holds, what in conditions if not holds]


def sequence(answers):
    """Answers in the order they came: "503 UNAVAILABLE → 200"."""
    return " → ".join(outcome(answer) for answer in answers)


def pay_at_fake(payment_id, amount, copies=1):
    """The fake PortOne's "pay" button: records the payment and delivers its signed webhook."""
    body = must("the fake's pay button", fake("POST", "/_fake/payments",
                                              {"paymentId": payment_id, "amount": amount,
                                               "webhookCopies": copies}), 201)
    return body


def complete_until_paid(token, payment_id, deadline_s=30):
    """The buyer's `complete`, retried until it says PAID; returns the answers it got."""
    answers = []
    deadline = time.monotonic() + deadline_s
    while True:
        answer = api("POST", f"/payments/{payment_id}/complete", token=token)
        answers.append(answer)
        if answer[0] == 200 and answer[1].get("status") == "PAID":
            return answers
        if time.monotonic() > deadline:
            return answers
        time.sleep(0.3)


def fault(kind, path, times=None, delay_ms=None):
    body = {"kind": kind, "path": path}
    if times is not None:
        body["times"] = times
    if delay_ms is not None:
        body["delayMs"] = delay_ms
    must("injecting a fault", fake("POST", "/_fake/faults", body), 201)


def clear_faults():
    must("clearing faults", fake("DELETE", "/_fake/faults"), 200)


def seoul_today():
    return datetime.datetime.now(SEOUL).date()


# ---------------------------------------------------------------------------
# Faults in the stores
# ---------------------------------------------------------------------------
def stop_redis():
    """SHUTDOWN NOSAVE: the server exits and forgets everything (it keeps nothing on disk)."""
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(ARGS.redis_port), "shutdown", "nosave"],
                   capture_output=True, timeout=10)
    for _ in range(100):
        if redis("ping") != "PONG":
            return
        time.sleep(0.01)
    sys.exit("the private Redis did not stop")


def start_redis():
    """The same private server scripts/lib.sh starts: nothing on disk, so it comes back empty."""
    subprocess.run(["redis-server", "--port", str(ARGS.redis_port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--daemonize", "yes", "--pidfile", ARGS.redis_pidfile,
                    "--logfile", ARGS.redis_log, "--dir", ARGS.redis_dir], check=True)
    for _ in range(100):
        if redis("ping") == "PONG":
            return
        time.sleep(0.05)
    sys.exit("the private Redis did not come back")


class Session:
    """One mariadb client kept open (no database selected), fed statements line by line: a kill
    round costs a round trip instead of starting a client."""

    END = "__faults_end__"

    def __init__(self):
        self.process = subprocess.Popen(
            [ARGS.db_client, "--no-defaults", "-uroot", "-h127.0.0.1", f"-P{os.environ.get('DB_PORT', '3306')}",
             "-N", "-B", "--unbuffered", "--force"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def rows(self, statements):
        self.process.stdin.write(f"{statements}\nSELECT '{self.END}';\n")
        self.process.stdin.flush()
        rows = []
        for line in self.process.stdout:
            if line.rstrip("\n") == self.END:
                return rows
            rows.append(line.rstrip("\n").split("\t"))
        raise RuntimeError("the mariadb client ended")

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=10)


def kill_runner_connections(session):
    """KILLs every connection to this suite's own database (the runner's pool), never another
    database's; returns how many it killed."""
    ids = [row[0] for row in session.rows(
        f"SELECT id FROM information_schema.PROCESSLIST WHERE db = '{ARGS.database}' AND id <> CONNECTION_ID();")]
    if ids:
        # A connection may have ended between the look and the kill: --force goes on.
        session.rows(" ".join(f"KILL {int(i)};" for i in ids))
    return len(ids)


class Killer:
    """Kills the runner's MariaDB connections, round after round (`every` seconds apart), while
    it runs."""

    def __init__(self, every=0.0):
        self.every, self.killed, self.rounds = every, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        session = Session()
        try:
            while not self.stop.is_set():
                self.killed += kill_runner_connections(session)
                self.rounds += 1
                self.stop.wait(self.every)
        finally:
            session.close()

    def __enter__(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()
        self.seconds = time.monotonic() - self.started
        self.stopped_at = datetime.datetime.now(datetime.timezone.utc)

    def __str__(self):
        return f"{self.killed} connections killed in {self.rounds} rounds over {self.seconds:.1f} s"


class RunnerLog:
    """The runner's log from a point on: what it says about a fault (retries, redeliveries) that
    the API does not."""

    def __init__(self):
        self.path = ARGS.runner_log
        self.offset = os.path.getsize(self.path) if self.path and os.path.exists(self.path) else 0

    def lines(self, *needles):
        if not self.path or not os.path.exists(self.path):
            return []
        with open(self.path, errors="replace") as file:
            file.seek(self.offset)
            plain = (re.sub(r"\x1b\[[0-9;]*m", "", line) for line in file)
            return [line for line in plain if all(needle in line for needle in needles)]

    def count(self, *needles):
        return len(self.lines(*needles))

    def runs(self, *needles):
        """The distinct run ids of the lines that say all of `needles`."""
        return {match.group(1) for line in self.lines(*needles)
                for match in [re.search(r'run_id="?([0-9a-f-]{36})', line)] if match}


# ---------------------------------------------------------------------------
# Letting things settle, and the consistency check
# ---------------------------------------------------------------------------
def drifted_counters():
    drift = []
    for product_id, remaining in sql("SELECT id, stock_remaining FROM products ORDER BY id"):
        loaded = counter(product_id)
        if loaded is not None and loaded != int(remaining):
            drift.append(f"product {product_id}: Redis {loaded}, MySQL {remaining}")
    return drift


def settle(pause=1.0):
    """Nothing of ours is in flight any more; the order-sweeper, which the runner fires every
    minute, is fired twice now (its counter check drops a counter only when it differed at two
    sweeps in a row). Returns the counters that differed from MySQL before the sweeps."""
    time.sleep(pause)
    drift = drifted_counters()
    if drift:
        for _ in range(2):
            must("firing order-sweeper", fire("order-sweeper"), 200)
    return drift


def check():
    """The read-only consistency check; returns the violations (empty when consistent) and what
    it looked at."""
    violations = []

    # Stock: MySQL's units taken = units held by live or pending orders; Redis agrees.
    held = {row[0]: int(row[1]) for row in sql(
        "SELECT oi.product_id, SUM(oi.quantity) FROM order_items oi JOIN orders o ON o.id = oi.order_id "
        f"WHERE o.status IN ({quoted(HOLDING)}) GROUP BY oi.product_id")}
    products = sql("SELECT id, stock, stock_remaining FROM products ORDER BY id")
    for product_id, stock, remaining in products:
        taken = int(stock) - int(remaining)
        if taken != held.get(product_id, 0):
            violations.append(f"product {product_id}: stock - stock_remaining = {taken}, "
                              f"units in holding orders = {held.get(product_id, 0)}")
        loaded = counter(product_id)
        if loaded is not None and loaded != int(remaining):
            violations.append(f"product {product_id}: Redis counter {loaded}, MySQL stock_remaining {remaining}")

    # The purchase limit's rows: each buyer's units of a product = units in their holding orders.
    bought = {(r[0], r[1]): int(r[2]) for r in sql(
        "SELECT o.buyer_id, oi.product_id, SUM(oi.quantity) FROM order_items oi JOIN orders o ON o.id = oi.order_id "
        f"WHERE o.status IN ({quoted(HOLDING)}) GROUP BY o.buyer_id, oi.product_id")}
    counted = {(r[0], r[1]): int(r[2]) for r in sql(
        "SELECT buyer_id, product_id, quantity FROM buyer_product_purchases")}
    for key in set(bought) | set(counted):
        if bought.get(key, 0) != counted.get(key, 0):
            violations.append(f"buyer {key[0]} product {key[1]}: buyer_product_purchases {counted.get(key, 0)}, "
                              f"units in holding orders {bought.get(key, 0)}")

    # Payments against their orders.
    orders = collections.defaultdict(list)
    for order_id, payment_id, status, amount in sql("SELECT id, payment_id, status, amount FROM orders"):
        orders[payment_id].append((order_id, status, int(amount)))
    payments = sql("SELECT id, status, amount, cancelled_amount FROM payments ORDER BY id")
    for payment_id, status, amount, cancelled in payments:
        amount, cancelled, its = int(amount), int(cancelled), orders[payment_id]
        statuses = {s for _, s, _ in its}
        live = sum(a for _, s, a in its if s in LIVE)
        refunded_orders = sum(a for _, s, a in its if s == "CANCELLED")
        wrong = None
        if sum(a for _, _, a in its) != amount:
            wrong = f"orders sum to {sum(a for _, _, a in its)}"
        elif status == "PENDING" and (statuses & set(LIVE) or cancelled):
            wrong = "PENDING with paid orders or a refund"
        elif status == "PAID" and (not statuses <= set(LIVE) or cancelled):
            wrong = "PAID but not every order is paid, shipped or confirmed"
        elif status == "PARTIAL_CANCELLED" and (not statuses <= set(LIVE) | {"CANCELLED"}
                                                or cancelled != refunded_orders or not 0 < cancelled < amount):
            wrong = f"PARTIAL_CANCELLED with refunds {cancelled}, cancelled orders worth {refunded_orders}"
        elif status in ("CANCELLED", "FAILED", "EXPIRED") and (statuses & set(LIVE) or cancelled not in (0, amount)):
            wrong = f"{status} with live orders or a partial refund"
        if wrong:
            violations.append(f"payment {payment_id} ({status}, {amount}, refunded {cancelled}): {wrong}; "
                              f"orders {its}")

        # ... and against the fake PortOne.
        fake_status, theirs = fake("GET", f"/payments/{urllib.parse.quote(payment_id)}", secret=True)
        if fake_status == 404:
            paid_there, refunded_there = False, 0
        elif fake_status == 200:
            paid_there, refunded_there = theirs["amount"]["paid"] > 0, theirs["amount"]["cancelled"]
        else:
            violations.append(f"payment {payment_id}: the fake PortOne answered {fake_status} {theirs}")
            continue
        paid_here = status in ("PAID", "PARTIAL_CANCELLED") or cancelled > 0
        if paid_there != paid_here:
            violations.append(f"payment {payment_id}: paid at PortOne {paid_there}, ours {status} "
                              f"refunded {cancelled}")
        if refunded_there != cancelled:
            violations.append(f"payment {payment_id}: PortOne refunded {refunded_there}, we recorded {cancelled}")
        held_there = (amount if paid_there else 0) - refunded_there
        if held_there != live:
            violations.append(f"payment {payment_id}: PortOne holds {held_there}, "
                              f"our paid/shipped/confirmed orders are {live}")
    cancels = collections.Counter()
    for cancel in must("the fake's cancels", fake("GET", "/_fake/cancels"), 200):
        cancels[cancel["paymentId"]] += cancel["amount"]
    ours = {p[0]: int(p[3]) for p in payments}
    for payment_id, total in cancels.items():
        if ours.get(payment_id) != total:
            violations.append(f"payment {payment_id}: cancels at PortOne total {total}, "
                              f"payments.cancelled_amount {ours.get(payment_id)}")

    # Settlements reconcile with the confirmed orders of their day, partner by partner.
    for run_id, day in sql("SELECT id, settlement_date FROM settlement_runs WHERE status = 'RUNNING'"):
        violations.append(f"settlement run {run_id} of {day} is still RUNNING")
    days = {r[0] for r in sql("SELECT DISTINCT settlement_date FROM settlements")}
    days |= {r[0] for r in sql("SELECT DISTINCT settlement_date FROM settlement_runs WHERE status = 'COMPLETED'")}
    for day in sorted(days):
        start = datetime.datetime.combine(datetime.date.fromisoformat(day), datetime.time(), SEOUL)
        start_utc = start.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        direct = {r[0]: (int(r[1]), int(r[2])) for r in sql(
            "SELECT partner_id, COUNT(*), SUM(amount) FROM orders WHERE status = 'CONFIRMED' "
            f"AND confirmed_at >= '{start_utc}' AND confirmed_at < '{start_utc}' + INTERVAL 1 DAY "
            "GROUP BY partner_id")}
        settled = {r[0]: (int(r[1]), int(r[2]), r[3]) for r in sql(
            "SELECT partner_id, order_count, gross_amount, run_id FROM settlements "
            f"WHERE settlement_date = '{day}'")}
        for partner in set(direct) | set(settled):
            want = direct.get(partner, (0, 0))
            got = settled.get(partner, (0, 0, None))[:2]
            if want != got:
                violations.append(f"settlement {day} partner {partner}: {got[0]} orders {got[1]} KRW, "
                                  f"confirmed orders {want[0]} for {want[1]} KRW")
        for run_id in {row[2] for row in settled.values()}:
            state = sql(f"SELECT status FROM settlement_runs WHERE id = '{run_id}'")
            if not state or state[0][0] != "COMPLETED":
                violations.append(f"settlement {day}: its rows come from run {run_id}, which is "
                                  f"{state[0][0] if state else 'unknown'}")
            partials = {r[0]: (int(r[1]), int(r[2])) for r in sql(
                "SELECT partner_id, SUM(order_count), SUM(gross_amount) FROM settlement_partials "
                f"WHERE run_id = '{run_id}' GROUP BY partner_id")}
            for partner, (count, gross, row_run) in settled.items():
                if row_run == run_id and partials.get(partner) != (count, gross):
                    violations.append(f"settlement {day} partner {partner}: partials of run {run_id} "
                                      f"{partials.get(partner)}, row {(count, gross)}")
    loaded = sum(1 for product_id, _, _ in products if counter(product_id) is not None)
    looked_at = (f"{len(products)} products ({loaded} counters in Redis), {len(payments)} payments, "
                 f"{sum(len(o) for o in orders.values())} orders, {len(days)} settled days")
    return violations, looked_at


def quoted(values):
    return ", ".join(f"'{v}'" for v in values)


# ---------------------------------------------------------------------------
# The scenarios. Each returns (fault, what happened, facts for the JSON).
# ---------------------------------------------------------------------------
class Stack:
    """What the scenarios share: accounts and a pool of logged-in buyers."""

    def __init__(self, buyers):
        self.run = uuid.uuid4().hex[:6]
        self.admin = login(os.environ["ADMIN_EMAIL"], os.environ["ADMIN_PASSWORD"])
        self.nike = login("partner-nike@kicksync.local")
        self.seoul = login("partner-seoul@kicksync.local")
        started = time.monotonic()
        accounts = new_buyers(buyers, self.run)
        self.emails = [email for email, _ in accounts]
        self.buyers = [token for _, token in accounts]
        print(f"  {buyers} buyers signed up and logged in ({time.monotonic() - started:.1f} s)", flush=True)


def redis_restart(stack):
    """1. The private Redis stopped and restarted during a drop."""
    units, buyers = 65, stack.buyers[:90]
    product = list_product(stack.nike, units, 189000, "Redis drop")
    start = time.monotonic() + 0.3
    gap = 0.035
    events = {}

    def attempt(index):
        wait = start + index * gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sent = time.monotonic()
        _, answer = checkout(buyers[index], [product["id"]])
        return sent, answer

    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
        futures = [pool.submit(attempt, i) for i in range(len(buyers))]
        time.sleep(max(0.0, start + 0.9 - time.monotonic()))
        stop_redis()
        events["stopped"] = time.monotonic()
        time.sleep(max(0.0, start + 2.0 - time.monotonic()))
        start_redis()
        events["restarted"] = time.monotonic()
        # A login needs Redis (it stores the refresh token): how soon after the restart does one
        # work? Each try is another buyer's, so that no account's login limit is met.
        logins = []
        while len(logins) < 50:
            email = stack.emails[len(logins)]
            answer = api("POST", "/auth/login", {"email": email, "password": PASSWORD})
            logins.append((time.monotonic() - events["restarted"], answer))
            if answer[0] == 200:
                break
            time.sleep(0.05)
        results = [future.result() for future in futures]

    if os.environ.get("FAULTS_DEBUG"):
        print({k: round(v - start, 3) for k, v in events.items()},
              [(round(sent - start, 3), a[0]) for sent, a in results])
    phases = {"before": [], "down": [], "after": []}
    for sent, answer in results:
        phase = "before" if sent < events["stopped"] else "down" if sent < events["restarted"] else "after"
        phases[phase].append(answer)
    # After the restart: a second small wave, so the counter is certainly used again.
    late = [checkout(token, [product["id"]])[1] for token in stack.buyers[90:95]]
    sold = sum(1 for _, answer in results if answer[0] == 201)
    drift = settle()
    remaining = stock_remaining(product["id"])
    loaded = counter(product["id"])
    bad = [a for _, a in results if a[0] not in (201, 409, 503)]
    login_after = next((at for at, answer in logins if answer[0] == 200), None)
    refused_logins = tally([answer for _, answer in logins if answer[0] != 200]) or "none"
    happened = (
        f"{len(buyers)} checkouts of {units} units over {len(buyers) * gap:.1f} s; Redis stopped at "
        f"{events['stopped'] - start:.1f} s, restarted empty at {events['restarted'] - start:.1f} s. "
        f"Before: {tally(phases['before'])}. While down: {tally(phases['down'])}. "
        f"After restart: {tally(phases['after'])}; then 5 more: {tally(late)}. "
        f"Logins after the restart: refused {refused_logins}, first 200 after "
        + (f"{login_after:.2f} s. " if login_after is not None else "never. ") +
        f"Sold {units - remaining} of {units} ({sold} answered 201), oversold {max(0, sold - units)}; "
        f"counter reloaded from MySQL: {loaded} = stock_remaining {remaining}"
        + (f"; other answers: {tally(bad)}" if bad else "")
        + (f"; counters differed before the sweep: {drift}" if drift else ""))
    unmet = expect([
        (sold <= units and units - remaining == sold, f"sold {units - remaining}, {sold} answered 201"),
        (not bad, f"checkouts answered {tally(bad)}"),
        (loaded == remaining, f"the counter is {loaded}, MySQL has {remaining}"),
        (login_after is not None, "no login worked after the restart"),
    ])
    return ("Redis (private) stopped and restarted during a drop", happened, unmet,
            {"sold": units - remaining, "answers_201": sold, "phases": {k: tally(v) for k, v in phases.items()},
             "late": tally(late), "counter": loaded, "login_after_restart_s": login_after,
             "refused_logins": refused_logins, "stock_remaining": remaining, "drift": drift,
             "other_answers": tally(bad)})


def mysql_kill_checkout(stack):
    """2a. The runner's MariaDB connections killed during checkout."""
    units, buyers, gap = 30, stack.buyers[:60], 0.025
    one = list_product(stack.nike, units, 159000, "MySQL-kill drop")
    two = list_product(stack.seoul, units, 79000, "MySQL-kill drop")
    # Half the buyers take one product (a one-line checkout: one round trip), half take both (a
    # checkout of several statements in one transaction): more of it for a kill to land in.
    items = [[one["id"]] if index % 2 == 0 else [one["id"], two["id"]] for index in range(len(buyers))]
    keys = [uuid.uuid4().hex for _ in buyers]
    start = time.monotonic() + 0.2

    def attempt(index):
        time.sleep(max(0.0, start + index * gap - time.monotonic()))
        return checkout(buyers[index], items[index], keys[index])[1]

    with Killer() as killer:
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            first = list(pool.map(attempt, range(len(buyers))))
        time.sleep(0.2)
    # Checkouts written while the connections were being killed: the first attempts' (retries
    # start after the killing stopped).
    stop = killer.stopped_at.strftime("%Y-%m-%d %H:%M:%S.%f")
    written_first = {row[0] for row in sql(
        f"SELECT idempotency_key FROM payments WHERE created_at < '{stop}' AND idempotency_key IN ({quoted(keys)})")}
    committed_500 = sum(1 for index, key in enumerate(keys) if key in written_first and first[index][0] >= 500)
    # Every buyer whose answer was not final tries again with the same Idempotency-Key.
    def retry(index):
        answer, tries = first[index], 0
        while (answer[0] >= 500 or answer[0] == 0) and tries < 5:
            tries += 1
            time.sleep(0.2)
            answer = checkout(buyers[index], items[index], keys[index])[1]
        return answer, tries

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        retried_answers = list(pool.map(retry, range(len(buyers))))
    final = [answer for answer, _ in retried_answers]
    retried = sum(tries for _, tries in retried_answers)
    drift = settle()
    sold = {p["id"]: units - stock_remaining(p["id"]) for p in (one, two)}
    won = [answer[1]["payment_id"] for answer in final if answer[0] == 201]
    stored = {row[0] for row in sql(
        "SELECT DISTINCT o.payment_id FROM orders o JOIN order_items oi ON oi.order_id = o.id "
        f"WHERE oi.product_id IN ({int(one['id'])}, {int(two['id'])})")}
    missing = [p for p in won if p not in stored]
    unanswered = [p for p in stored if p not in won]
    # A checkout in MySQL whose buyer holds no 201: what that buyer was answered, key by key.
    by_key = {key: index for index, key in enumerate(keys)}
    lost = []
    for payment_id, key in sql(f"SELECT id, idempotency_key FROM payments WHERE id IN ({quoted(unanswered)})"
                               if unanswered else "SELECT 1, 2 FROM DUAL WHERE FALSE"):
        index = by_key.get(key)
        if index is not None:
            lost.append(f"{payment_id}: first {outcome(first[index])}, same key again {outcome(final[index])}")
    happened = (
        f"{len(buyers)} buyers checked out over {len(buyers) * gap:.1f} s (half one product, half two; "
        f"{units} units each) while the runner's MariaDB connections were killed without pause "
        f"({killer}). First answers: {tally(first)}; {committed_500} of the 500s had committed all the same "
        f"(the connection lost after the COMMIT). {retried} retries with the same Idempotency-Key; "
        f"final: {tally(final)}. Sold {sold[one['id']]} and {sold[two['id']]} of {units}; "
        f"{len(won)} buyers hold a 201, {len(stored)} checkouts in MySQL, {len(missing)} answered 201 "
        f"without rows, {len(unanswered)} in MySQL without a 201"
        + (f" ({'; '.join(lost)})" if lost else "")
        + (f"; counters differed before the sweep: {drift}" if drift else ""))
    unmet = expect([
        (sold[one["id"]] <= units and sold[two["id"]] <= units, f"sold {sold}"),
        (not missing, f"answered 201 with no rows: {missing}"),
        (not lost, f"in MySQL, answered otherwise: {lost}"),
        (all(answer[0] in (201, 409) for answer in final), f"final answers {tally(final)}"),
    ])
    return ("MariaDB connections of the runner killed during checkout", happened, unmet,
            {"killed": killer.killed, "rounds": killer.rounds, "first": tally(first), "final": tally(final),
             "committed_despite_500": committed_500,
             "sold": list(sold.values()), "holders": len(won), "stored": len(stored), "missing": missing,
             "unanswered": lost, "drift": drift})


def prepare_settlement_days(stack):
    """20 orders bought, paid, shipped and confirmed through the API, then (test setup, in MySQL)
    10 moved back two days and 10 moved back one day, every timestamp of the order alike."""
    nike = list_product(stack.nike, 12, 129000, "Settled pair")
    seoul = list_product(stack.seoul, 8, 99000, "Settled pair")
    orders = []
    for index, token in enumerate(stack.buyers[60:80]):
        product = nike if index < 12 else seoul
        _, answer = checkout(token, [product["id"]])
        body = must("checkout for the settlement days", answer, 201)
        pay_at_fake(body["payment_id"], body["amount"])
        answers = complete_until_paid(token, body["payment_id"])
        if answers[-1][0] != 200:
            sys.exit(f"completing {body['payment_id']}: {answers[-1]}")
        order = body["orders"][0]
        partner = stack.nike if index < 12 else stack.seoul
        must("ship", api("POST", f"/partner/orders/{order['id']}/ship", token=partner), 200)
        must("confirm", api("POST", f"/orders/{order['id']}/confirm", token=token), 200)
        orders.append(order["id"])
    shift = "{0} = {0} - INTERVAL {1} DAY"
    columns = ("created_at", "expires_at", "paid_at", "shipped_at", "confirmed_at")
    for days, ids in ((2, orders[0::2]), (1, orders[1::2])):
        sets = ", ".join(shift.format(column, days) for column in columns)
        sql(f"UPDATE orders SET {sets} WHERE id IN ({', '.join(map(str, ids))})")
    return orders


def mysql_kill_settlement(stack):
    """2b. The runner's MariaDB connections killed during an admin's settlement run."""
    prepare_settlement_days(stack)
    log = RunnerLog()
    today = seoul_today()
    day = (today - datetime.timedelta(days=2)).isoformat()
    refused = api("POST", "/admin/settlements/runs", {"date": today.isoformat()}, token=stack.admin)
    starts = []
    run_id = None
    with Killer() as killer:
        # The admin tries to start the run until one starts (or holds the day), 5 s at most ...
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            answer = api("POST", "/admin/settlements/runs", {"date": day}, token=stack.admin)
            starts.append(answer)
            run_id = started_run(answer)
            if run_id:
                break
            time.sleep(0.05)
        # ... and the kills go on for 1.5 s more, and until the run's partitions have met them (one
        # failed and will come back), 5 s at most.
        least, deadline = time.monotonic() + 1.5, time.monotonic() + 5
        while time.monotonic() < least or (
                time.monotonic() < deadline and not log.count("partition failed; it will be redelivered")):
            time.sleep(0.05)
    # The admin, once the database answers again: the run's status, and a new run if it FAILED.
    states = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if run_id is None:
            answer = api("POST", "/admin/settlements/runs", {"date": day}, token=stack.admin)
            starts.append(answer)
            run_id = started_run(answer)
            if run_id is None:
                time.sleep(1)
            continue
        status, state = api("GET", f"/admin/settlements/runs/{run_id}", token=stack.admin)
        if status == 200 and state["status"] != "RUNNING":
            states.append(f"{state['status']}" + (f" ({state.get('error')})" if state.get("error") else ""))
            if state["status"] == "COMPLETED":
                break
            run_id = None
            continue
        time.sleep(0.5)
    waited = 90 - (deadline - time.monotonic())
    settle()
    rows = must("the day's settlements", api("GET", f"/admin/settlements?date={day}", token=stack.admin), 200)
    runs = {r[0]: int(r[1]) for r in sql(
        f"SELECT status, COUNT(*) FROM settlement_runs WHERE settlement_date = '{day}' GROUP BY status")}
    happened = (
        f"an admin run for today answered {outcome(refused)}; a run of {day} started while the runner's "
        f"MariaDB connections were killed without pause ({killer}): start answers {tally(starts)}; "
        f"{log.count('could not start the settlement run')} starts failed, "
        f"{len(log.runs('a dead run was still RUNNING in MySQL'))} of those runs left RUNNING in MySQL "
        f"(their row written, its answer and their FAILED mark lost) and ended by a later start; "
        f"{log.count('partition failed; it will be redelivered')} partition deliveries failed and came back; "
        f"runs ended {', '.join(states) or 'never'} after {waited:.1f} s; runs of the day in MySQL {runs}; "
        f"{len(rows['items'])} settlement rows, "
        f"{sum(r['order_count'] for r in rows['items'])} orders, {sum(r['gross_amount'] for r in rows['items'])} KRW")
    unmet = expect([
        (refused[0] == 422, f"an admin run for today answered {outcome(refused)}"),
        (states[-1:] == ["COMPLETED"], f"the runs ended {states}"),
    ])
    return ("MariaDB connections of the runner killed during a settlement run", happened, unmet,
            {"today": outcome(refused), "starts": tally(starts), "ends": states, "rows": rows["items"], "runs": runs,
             "killed": killer.killed})


def started_run(answer):
    """The run an admin's start answer names: the one it started (202), or the one that holds
    the day (409 RUN_IN_PROGRESS, "run <id> is settling ...")."""
    status, body = answer
    if status == 202:
        return body["run_id"]
    if status == 409 and body.get("code") == "RUN_IN_PROGRESS":
        return body["detail"].split()[1]
    return None


def settlement_duplicates(stack):
    """3. Two schedulers at once, and the partitions of the run delivered twice."""
    import boto3  # noqa: PLC0415 - the suite's venv has it; only this scenario needs it

    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    queue = os.environ["SETTLEMENT_QUEUE_URL"]
    day = (seoul_today() - datetime.timedelta(days=1)).isoformat()
    log = RunnerLog()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        fires = list(pool.map(lambda _: fire("settlement-scheduler"), range(2)))
    reports = [body.get("outcome", outcome((status, body))) for status, body in fires]
    started = [body for status, body in fires if status == 200 and body.get("outcome") == "started"]
    if len(started) != 1:
        return ("Two settlement schedulers at once", f"two fires for {day} answered {fires}",
                [f"expected exactly one fire to start the run of {day}"], {"fires": fires})
    run = started[0]
    bodies = partition_bodies(run["run_id"], day, run["partitions"])
    # Right away, while the run is RUNNING: every partition again, with the same body.
    send_all(sqs, queue, bodies)
    state = wait_run(stack, run["run_id"])
    # After it completed: every partition a third time.
    send_all(sqs, queue, bodies)
    time.sleep(3)
    again = [fire("settlement-scheduler")[1].get("outcome") for _ in range(2)]
    settle()
    rows = must("the day's settlements", api("GET", f"/admin/settlements?date={day}", token=stack.admin), 200)
    runs = sql(f"SELECT status, COUNT(*) FROM settlement_runs WHERE settlement_date = '{day}' GROUP BY status")
    dlq = dead_letters(sqs, queue)
    happened = (
        f"two settlement-scheduler fires at once for {day}: {', '.join(reports)}; its {run['partitions']} "
        f"partitions sent again while it ran and once more after it ended: run {state}; the worker counted "
        f"{log.count('partition counted', run['run_id'])} partition deliveries "
        f"(for {run['partitions']} partitions) and finalized {log.count('settlement run completed', run['run_id'])}"
        f" time(s); "
        f"runs of the day {dict((r[0], int(r[1])) for r in runs)}, {len(rows['items'])} settlement rows "
        f"({sum(r['order_count'] for r in rows['items'])} orders, "
        f"{sum(r['gross_amount'] for r in rows['items'])} KRW), dead letters {dlq}; "
        f"two more fires: {', '.join(map(str, again))}")
    unmet = expect([
        (sorted(reports) == ["busy", "started"], f"the two fires: {reports}"),
        (state == "COMPLETED", f"the run ended {state}"),
        (log.count("settlement run completed", run["run_id"]) == 1, "finalized other than once"),
        (dlq == 0, f"{dlq} dead letters"),
        (again == ["already_settled"] * 2, f"later fires: {again}"),
    ])
    return ("Two settlement schedulers at once; every partition delivered twice (and a third time late)",
            happened, unmet, {"fires": reports, "state": state, "rows": rows["items"], "dead_letters": dlq,
                       "again": again})


def partition_bodies(run_id, day, partitions):
    """The bodies the scheduler sent: the Seoul day cut into equal ranges, as the code cuts it."""
    start = datetime.datetime.combine(datetime.date.fromisoformat(day), datetime.time(), SEOUL)
    start = start.astimezone(datetime.timezone.utc)
    total = 24 * 3600 * 1_000_000

    def at(index):
        instant = start + datetime.timedelta(microseconds=total * index // partitions)
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")

    return [json.dumps({"run_id": run_id, "date": day, "partition": index, "partitions": partitions,
                        "from": at(index), "to": at(index + 1)}) for index in range(partitions)]


def send_all(sqs, queue, bodies):
    for first in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[first:first + 10])]
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)


def dead_letters(sqs, queue):
    dlq = queue.replace("kicksync-settlement-partitions", "kicksync-settlement-partitions-dlq")
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def wait_run(stack, run_id, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, state = api("GET", f"/admin/settlements/runs/{run_id}", token=stack.admin)
        if status == 200 and state["status"] != "RUNNING":
            return state["status"] + (f" ({state['error']})" if state.get("error") else "")
        time.sleep(0.3)
    return "still RUNNING after 60 s"


def portone_faults(stack):
    """4. PortOne failing, slow and answering 5xx during payments and refunds, then recovering."""
    nike = list_product(stack.nike, 10, 150000, "PortOne drop")
    seoul = list_product(stack.seoul, 10, 90000, "PortOne drop")
    buyers = stack.buyers[80:90]
    checkouts = []
    for index, token in enumerate(buyers):
        items = [nike["id"]] if index < 8 else [nike["id"], seoul["id"]]
        body = must("checkout", checkout(token, items)[1], 201)
        checkouts.append((token, body))
    lines = []
    facts = {}

    def pay_and_complete(group, label):
        """Each pays at the fake (its webhook meets the fault); the buyer's complete is tried once
        under the fault, then the fault is cleared and complete retried until PAID."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(group)) as pool:
            paid = list(pool.map(lambda tb: pay_at_fake(tb[1]["payment_id"], tb[1]["amount"]), group))
        hooks = collections.Counter(d.get("status") for p in paid for d in p["webhook"]["deliveries"])
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(group)) as pool:
            under = list(pool.map(lambda tb: api("POST", f"/payments/{tb[1]['payment_id']}/complete",
                                                 token=tb[0]), group))
        clear_faults()
        after = [complete_until_paid(token, body["payment_id"]) for token, body in group]
        tries = sum(len(answers) for answers in after)
        ok = sum(1 for answers in after if answers[-1][0] == 200)
        lines.append(f"{label}: webhooks answered {dict(hooks)}, complete under the fault {tally(under)}; "
                     f"recovered: {ok}/{len(group)} PAID after {tries} complete calls")
        facts[label] = {"webhooks": dict(hooks), "under": tally(under), "paid": ok, "tries": tries}

    fault("server-error", "get")
    pay_and_complete(checkouts[0:3], "PortOne 5xx on every lookup")
    fault("slow", "get", delay_ms=1500)
    pay_and_complete(checkouts[3:6], "PortOne slower than our 1 s timeout on every lookup")
    fault("server-error", "get", times=2)
    pay_and_complete(checkouts[6:10], "PortOne 5xx twice, then answering")

    def cancel_until_done(token, order_id, pause):
        answers = []
        for _ in range(20):
            answer = api("POST", f"/orders/{order_id}/cancel", token=token)
            answers.append(answer)
            if answer[0] == 200 or 400 <= answer[0] < 500:
                break
            time.sleep(pause)
        return answers

    refunds = []
    # A cancel that times out at our side and is carried out at PortOne after we gave up; the
    # buyer retries after PortOne carried it out, and right away (before it did).
    for (token, body), pause, label in ((checkouts[0], 1.0, "retried after PortOne carried it out"),
                                        (checkouts[1], 0.05, "retried before PortOne carried it out")):
        fault("slow", "cancel", times=1, delay_ms=1500)
        answers = cancel_until_done(token, body["orders"][0]["id"], pause)
        refunds.append(f"cancel slower than our timeout, {label}: {sequence(answers)}")
    fault("server-error", "cancel", times=2)
    answers = cancel_until_done(checkouts[2][0], checkouts[2][1]["orders"][0]["id"], 0.2)
    refunds.append(f"cancel meeting two 5xx: {sequence(answers)}")
    # Split checkouts (two partners): one order refunded under a slow cancel, the other under 5xx.
    token, body = checkouts[8]
    fault("slow", "cancel", times=1, delay_ms=1500)
    first = cancel_until_done(token, body["orders"][0]["id"], 1.0)
    fault("server-error", "cancel", times=1)
    second = cancel_until_done(token, body["orders"][1]["id"], 0.2)
    refunds.append(f"a two-partner payment, one order under a slow cancel ({sequence(first)}), "
                   f"the other under a 5xx ({sequence(second)})")
    token, body = checkouts[9]
    fault("slow", "cancel", times=1, delay_ms=1500)
    one = cancel_until_done(token, body["orders"][1]["id"], 0.05)
    refunds.append(f"a two-partner payment, one of its orders under a slow cancel: {sequence(one)}")
    clear_faults()
    time.sleep(2)  # the last slow cancel at PortOne finishes (and is refused)
    settle()
    ids = [body["payment_id"] for _, body in checkouts]
    states = collections.Counter(row[0] for row in sql(
        f"SELECT status FROM payments WHERE id IN ({quoted(ids)})"))
    cancels = must("cancels", fake("GET", "/_fake/cancels"), 200)
    ours = [c for c in cancels if c["paymentId"] in ids]
    refused = sum(1 for r in must("requests", fake("GET", "/_fake/requests"), 200)
                  if r["path"].endswith("/cancel") and r["answered"] == 409)
    refunded = sql(f"SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM orders WHERE status = 'CANCELLED' "
                   f"AND payment_id IN ({quoted(ids)})")[0]
    happened = ("; ".join(lines) + ". Refunds (each cancel retried by the buyer until it answered 200): "
                + "; ".join(refunds)
                + f". Payments now {dict(states)}; {refunded[0]} orders refunded ({refunded[1]} KRW), PortOne "
                f"carried out {len(ours)} cancels ({sum(c['amount'] for c in ours)} KRW) and refused "
                f"{refused} repeats")
    facts.update({"refunds": refunds, "payments": dict(states), "cancels": len(ours),
                  "cancelled_krw": sum(c["amount"] for c in ours), "refused_repeats": refused})
    unmet = expect([
        (sum(f["paid"] for f in facts.values() if isinstance(f, dict) and "paid" in f) == len(checkouts),
         "not every payment ended PAID once complete was retried"),
        (all(r.endswith("200") or r.endswith("200)") for r in refunds), f"refunds: {refunds}"),
        (len(ours) == int(refunded[0]) and sum(c["amount"] for c in ours) == int(refunded[1]),
         f"{len(ours)} cancels at PortOne for {refunded[0]} refunded orders"),
    ])
    return ("PortOne failing, slow and answering 5xx during payments and refunds, then recovering",
            happened, unmet, facts)


def duplicate_webhooks(stack):
    """5. 1,000 copies of the payment webhook."""
    product = list_product(stack.nike, 5, 209000, "Webhook drop")
    token = stack.buyers[95]
    body = must("checkout", checkout(token, [product["id"]])[1], 201)
    remaining = stock_remaining(product["id"])
    lookups_before = lookups()
    # Every state the payment and its order are seen in while the copies arrive, polled apart.
    seen = []
    watching = threading.Event()

    def watch():
        session = Session()
        try:
            while not watching.is_set():
                rows = session.rows(
                    f"SELECT p.status, p.paid_at, p.updated_at, o.status, o.paid_at, o.updated_at "
                    f"FROM {ARGS.database}.payments p JOIN {ARGS.database}.orders o ON o.payment_id = p.id "
                    f"WHERE p.id = '{body['payment_id']}';")
                state = tuple(rows[0])
                if not seen or seen[-1] != state:
                    seen.append(state)
                watching.wait(0.01)
        finally:
            session.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        paid = list(pool.map(lambda _: pay_at_fake(body["payment_id"], body["amount"], copies=100), range(10)))
    elapsed = time.monotonic() - started
    answers = collections.Counter(delivery.get("status") or delivery.get("error")
                                  for answer in paid for delivery in answer["webhook"]["deliveries"])
    ids = len({answer["webhook"]["id"] for answer in paid})
    # Then one of those signed webhooks, replayed 1,000 times by 20 senders at once.
    signed = paid[0]["webhook"]
    headers = {"webhook-id": signed["id"], "webhook-timestamp": str(signed["timestamp"]),
               "webhook-signature": signed["signature"], "content-type": "application/json"}

    def replay(_):
        request = urllib.request.Request(ARGS.base + "/webhooks/portone", data=signed["body"].encode(),
                                         method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return f"{response.status} {parse(response.read()).get('status')}"
        except urllib.error.HTTPError as error:
            return f"{error.code} {parse(error.read()).get('code')}"

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        replays = collections.Counter(pool.map(replay, range(1000)))
    replay_seconds = time.monotonic() - started
    watching.set()
    watcher.join()
    settle()
    row = sql(f"SELECT status, paid_at, updated_at FROM payments WHERE id = '{body['payment_id']}'")[0]
    orders = sql(f"SELECT status, paid_at FROM orders WHERE payment_id = '{body['payment_id']}'")
    complete = api("POST", f"/payments/{body['payment_id']}/complete", token=token)
    changes = len(seen) - 1
    statuses = " → ".join(f"{state[0]}/{state[3]}" for state in seen)
    happened = (
        f"{sum(answers.values())} webhook deliveries ({ids} webhook ids × 100 copies, 10 senders at once) "
        f"in {elapsed:.1f} s answered {dict(answers)}; then one of them replayed 1,000 times by 20 senders "
        f"at once in {replay_seconds:.1f} s: {dict(replays)}; PortOne looked up {lookups() - lookups_before} times; "
        f"payment and order seen in {len(seen)} states ({statuses}, polled every 10 ms): {changes} state "
        f"change(s); now payment {row[0]}, order {[o[0] for o in orders]}; "
        f"stock_remaining {remaining} → {stock_remaining(product['id'])}; "
        f"complete afterwards: {outcome(complete)} {complete[1].get('status')}")
    unmet = expect([
        (changes == 1 and row[0] == "PAID" and [o[0] for o in orders] == ["PAID"],
         f"{changes} state changes, payment {row[0]}"),
        (sum(answers.values()) == 1000, f"{sum(answers.values())} deliveries"),
        (stock_remaining(product["id"]) == remaining, "the stock moved"),
        (complete[0] == 200, f"complete answered {outcome(complete)}"),
    ])
    return ("1,000 duplicate payment webhooks", happened, unmet,
            {"deliveries": dict(answers), "ids": ids, "replays": dict(replays), "payment": row[0], "changes": changes,
             "lookups": lookups() - lookups_before, "seconds": round(elapsed, 1)})


def burst(stack):
    """6. A CPU burst: 300 buyers signing up and logging in at once, while a password is guessed
    and ten buyers each send ten checkouts of one product at the same moment."""
    run = uuid.uuid4().hex[:6]
    product = list_product(stack.nike, 50, 219000, "Burst drop")
    # Accounts of their own: the other scenarios' buyers hold unpaid orders up to the cap.
    shoppers = [token for _, token in new_buyers(10, f"{run}-shop")]
    victim = f"burst-{run}-victim@example.com"
    must("the guessed account's sign-up", api("POST", "/auth/signup", {
        "email": victim, "password": PASSWORD, "name": "Guessed", "role": "buyer"}), 201)
    # The login limit per email of the runner (its default); the guesses beyond it are refused.
    email_limit = int(os.environ.get("LOGIN_LIMIT_PER_EMAIL", "10"))
    go = threading.Event()

    def newcomer(n):
        go.wait()
        email = f"burst-{run}-{n}@example.com"
        signed = api("POST", "/auth/signup", {"email": email, "password": PASSWORD,
                                              "name": f"Burst {n}", "role": "buyer"}, timeout=120)
        logged = api("POST", "/auth/login", {"email": email, "password": PASSWORD}, timeout=120)
        return signed, logged

    def guess(_):
        go.wait()
        return api("POST", "/auth/login", {"email": victim, "password": "not-the-password"}, timeout=120)

    def shop(index):
        go.wait()
        time.sleep(0.5)  # into the thick of the signups' argon2 work
        return checkout(shoppers[index // 10], [product["id"]])[1]

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=300 + 30 + 100) as pool:
        newcomers = [pool.submit(newcomer, n) for n in range(300)]
        guesses = [pool.submit(guess, n) for n in range(30)]
        checkouts = [pool.submit(shop, n) for n in range(100)]
        go.set()
        newcomers = [future.result() for future in newcomers]
        guesses = [future.result() for future in guesses]
        checkouts = [future.result() for future in checkouts]
    seconds = time.monotonic() - started
    signups = [signed for signed, _ in newcomers]
    logins = [logged for _, logged in newcomers]
    per_shopper = [[answer for index, answer in enumerate(checkouts) if index // 10 == shopper]
                   for shopper in range(len(shoppers))]
    won = [sum(1 for answer in answers if answer[0] == 201) for answers in per_shopper]
    odd_checkouts = [answer for answer in checkouts if answer[0] not in (201, 409)]
    guessed = sum(1 for answer in guesses if answer[0] == 401)
    limited = sum(1 for answer in guesses if answer[0] == 429)
    drift = settle()
    remaining = stock_remaining(product["id"])
    happened = (
        f"300 sign-ups then logins, 30 wrong-password logins of one account and 100 checkouts "
        f"(10 buyers × 10 at once, one unit each allowed) in {seconds:.1f} s. Sign-ups: {tally(signups)}; "
        f"logins: {tally(logins)}; guesses: {tally(guesses)}; checkouts: {tally(checkouts)}, "
        f"{sum(won)} sold ({remaining} of 50 left)"
        + (f"; counters differed before the sweep: {drift}" if drift else ""))
    unmet = expect([
        (all(answer[0] == 201 for answer in signups), f"sign-ups answered {tally(signups)}"),
        (all(answer[0] == 200 for answer in logins), f"logins answered {tally(logins)}"),
        (guessed == email_limit and limited == 30 - email_limit,
         f"{guessed} guesses counted and {limited} refused; the limit is {email_limit}"),
        (not odd_checkouts, f"checkouts answered {tally(odd_checkouts)}"),
        (won == [1] * len(shoppers), f"units per buyer {won}"),
        (50 - remaining == sum(won), f"sold {50 - remaining}, {sum(won)} answered 201"),
    ])
    return ("A CPU burst: 300 sign-ups and logins at once, with guesses and concurrent checkouts", happened,
            unmet, {"seconds": round(seconds, 1), "signups": tally(signups), "logins": tally(logins),
                    "guesses": tally(guesses), "checkouts": tally(checkouts), "won": won,
                    "stock_remaining": remaining, "drift": drift})


def lookups():
    return sum(1 for r in must("requests", fake("GET", "/_fake/requests"), 200) if r["method"] == "GET")


SCENARIOS = {
    "1": redis_restart,
    "2a": mysql_kill_checkout,
    "2b": mysql_kill_settlement,
    "3": settlement_duplicates,
    "4": portone_faults,
    "5": duplicate_webhooks,
    "6": burst,
}


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--portone", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--db-client", default="mariadb", help="the mariadb (or mysql) client")
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--redis-pidfile", required=True)
    parser.add_argument("--redis-dir", required=True)
    parser.add_argument("--redis-log", required=True)
    parser.add_argument("--runner-log", default="")
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--only", default="", help="comma-separated scenario names, e.g. 1,2a,4")
    parser.add_argument("--visibility-timeout", type=int, default=5)
    ARGS = parser.parse_args()
    # redis-server changes into --dir before it opens the others.
    for name in ("redis_pidfile", "redis_dir", "redis_log", "artifacts"):
        setattr(ARGS, name, os.path.abspath(getattr(ARGS, name)))
    chosen = [name for name in SCENARIOS if not ARGS.only or name in ARGS.only.split(",")]

    suite_started = time.monotonic()
    # Test setup on this private moto: a failed partition comes back after a few seconds.
    import boto3  # noqa: PLC0415

    boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).set_queue_attributes(
        QueueUrl=os.environ["SETTLEMENT_QUEUE_URL"],
        Attributes={"VisibilityTimeout": str(ARGS.visibility_timeout)})
    print("setting up accounts ...", flush=True)
    stack = Stack(buyers=96)
    if "3" in chosen and "2b" not in chosen:
        prepare_settlement_days(stack)

    results = []
    failed = False
    for name in chosen:
        print(f"\nscenario {name}: {SCENARIOS[name].__doc__.split(chr(10))[0]}", flush=True)
        started = time.monotonic()
        what, happened, unmet, facts = SCENARIOS[name](stack)
        violations, looked_at = check()
        seconds = time.monotonic() - started
        verdict = (f"consistent ({looked_at})" if not violations
                   else f"{len(violations)} violations ({looked_at})")
        print(f"{what} → {happened} [check: {verdict}] ({seconds:.1f} s)", flush=True)
        for problem in unmet:
            print(f"  NOT AS EXPECTED: {problem}")
        for violation in violations[:20]:
            print(f"  VIOLATION {violation}")
        failed |= bool(violations or unmet)
        results.append({"scenario": name, "fault": what, "happened": happened, "check": verdict,
                        "unmet": unmet, "violations": violations, "seconds": round(seconds, 1), "facts": facts})

    total = time.monotonic() - suite_started
    with open(os.path.join(ARGS.artifacts, "faults.json"), "w") as file:
        json.dump({"at": datetime.datetime.now(SEOUL).isoformat(timespec="seconds"), "seconds": round(total, 1),
                   "results": results}, file, indent=2, ensure_ascii=False)
    with open(os.path.join(ARGS.artifacts, "faults.md"), "w") as file:
        file.write("| # | fault | what happened | check |\n|---|---|---|---|\n")
        for result in results:
            file.write(f"| {result['scenario']} | {result['fault']} | {result['happened']} | {result['check']} |\n")
    print(f"\n{len(results)} scenarios in {total:.1f} s; "
          + ("every check consistent, every scenario as expected" if not failed
             else "FAILED: violations or scenarios not as expected (see above)"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
