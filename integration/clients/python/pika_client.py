"""Client-compatibility scenarios with pika (BlockingConnection). AMQP_URL names the broker."""

import datetime
import time

import pika
import pika.exceptions

from runner import NESTED_HEADERS, Skip, check, eventually, run, unique, url  # noqa: F401

HEARTBEAT = 2


def connect(heartbeat=HEARTBEAT):
    params = pika.URLParameters(url())
    params.heartbeat = heartbeat
    return pika.BlockingConnection(params)


conn = None
ch = None


def setup():
    global conn, ch
    conn = connect()
    ch = conn.channel()


def reopen():
    global ch
    if ch is None or not ch.is_open:
        ch = conn.channel()
    return ch


def queue(**kw):
    name = unique("pika")
    reopen().queue_declare(queue=name, **kw)
    return name


def count(name):
    return reopen().queue_declare(queue=name, passive=True).method.message_count


def publish(name, body, exchange="", **props):
    reopen().basic_publish(exchange, name, body, pika.BasicProperties(**props))


def connect_heartbeat():
    setup()
    negotiated = conn._impl.params.heartbeat
    check(negotiated == HEARTBEAT, f"negotiated heartbeat {negotiated}, asked {HEARTBEAT}")
    # Stay idle for more than two heartbeat intervals; the connection must survive.
    conn.sleep(HEARTBEAT * 2.5)
    check(conn.is_open, "connection closed while idle with heartbeats")
    q = queue(exclusive=True)
    check(count(q) == 0, "round trip after idle period failed")


def exchange_types():
    for kind in ("direct", "fanout", "topic", "headers"):
        ex = unique(f"pika-{kind}")
        ch.exchange_declare(exchange=ex, exchange_type=kind)
        q = queue()
        args = {"x-match": "all", "k": "v"} if kind == "headers" else None
        key = "a.b" if kind != "headers" else ""
        ch.queue_bind(q, ex, routing_key=key, arguments=args)
        ch.basic_publish(ex, "a.b", b"m", pika.BasicProperties(headers={"k": "v"}))
        method, _, body = ch.basic_get(q, auto_ack=True)
        check(method is not None and body == b"m", f"{kind} exchange did not route")
        ch.exchange_delete(ex)
        ch.queue_delete(q)


def exchange_to_exchange():
    src, dst = unique("pika-src"), unique("pika-dst")
    ch.exchange_declare(exchange=src, exchange_type="topic")
    ch.exchange_declare(exchange=dst, exchange_type="fanout")
    ch.exchange_bind(destination=dst, source=src, routing_key="a.#")
    q = queue()
    ch.queue_bind(q, dst)
    ch.basic_publish(src, "a.b.c", b"e2e")
    ch.basic_publish(src, "b.c", b"nope")
    check(eventually(lambda: count(q) == 1), f"expected 1 message via e2e, got {count(q)}")
    ch.exchange_unbind(destination=dst, source=src, routing_key="a.#")
    ch.exchange_delete(src)
    ch.exchange_delete(dst)
    ch.queue_delete(q)


def queue_durable():
    q = queue(durable=True)
    ch.queue_declare(queue=q, durable=True)  # equivalent redeclare is fine
    try:
        ch.queue_declare(queue=q, durable=False)
        raise AssertionError("inequivalent redeclare succeeded")
    except pika.exceptions.ChannelClosedByBroker as e:
        check(e.reply_code == 406, f"reply code {e.reply_code}, expected 406")
    reopen().queue_delete(q)


def queue_exclusive():
    q = queue(exclusive=True)
    other = connect()
    try:
        och = other.channel()
        try:
            och.basic_consume(q, lambda *a: None)
            raise AssertionError("another connection consumed an exclusive queue")
        except pika.exceptions.ChannelClosedByBroker as e:
            check(e.reply_code == 405, f"reply code {e.reply_code}, expected 405")
    finally:
        other.close()
    ch.queue_delete(q)


def queue_auto_delete():
    q = queue(auto_delete=True)
    tag = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(tag)
    try:
        ch.queue_declare(queue=q, passive=True)
        raise AssertionError("auto-delete queue still exists after its last consumer left")
    except pika.exceptions.ChannelClosedByBroker as e:
        check(e.reply_code == 404, f"reply code {e.reply_code}, expected 404")


def queue_server_named():
    ok = reopen().queue_declare(queue="", exclusive=True)
    name = ok.method.queue
    check(name.startswith("amq.gen-"), f"server-named queue {name!r}")
    ch.queue_delete(name)


def passive_missing_404():
    try:
        reopen().queue_declare(queue=unique("pika-missing"), passive=True)
        raise AssertionError("passive declare of a missing queue succeeded")
    except pika.exceptions.ChannelClosedByBroker as e:
        check(e.reply_code == 404, f"reply code {e.reply_code}, expected 404")
        check("NOT_FOUND" in e.reply_text, f"reply text {e.reply_text!r}")
    check(conn.is_open, "the connection closed on a channel error")
    reopen()


def publish_confirms():
    c = conn.channel()
    c.confirm_delivery()
    q = unique("pika-confirm")
    c.queue_declare(queue=q, durable=True)
    for i in range(20):
        # basic_publish raises NackError/UnroutableError unless the broker acks.
        c.basic_publish("", q, b"c%d" % i, pika.BasicProperties(delivery_mode=2))
    check(eventually(lambda: count(q) == 20), f"count {count(q)}")
    c.queue_delete(q)
    c.close()


def mandatory_return():
    returned = []
    c = conn.channel()
    c.add_on_return_callback(lambda _ch, method, props, body: returned.append((method, body)))
    key = unique("pika-unroutable")
    c.basic_publish("", key, b"ret", mandatory=True)
    conn.process_data_events(time_limit=0)
    deadline = time.monotonic() + 5
    while not returned and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.1)
    check(returned, "no basic.return")
    method, body = returned[0]
    check(method.reply_code == 312 and method.reply_text == "NO_ROUTE", f"{method}")
    check(method.routing_key == key and body == b"ret", f"{method} {body!r}")
    # With confirms on, pika raises UnroutableError carrying the returned message.
    c.confirm_delivery()
    try:
        c.basic_publish("", key, b"ret2", mandatory=True)
        raise AssertionError("mandatory publish with confirms did not raise")
    except pika.exceptions.UnroutableError as e:
        check(len(e.messages) == 1 and e.messages[0].body == b"ret2", f"{e.messages}")
    c.close()


def consume_manual_ack():
    q = queue()
    for i in range(3):
        publish(q, b"m%d" % i)
    got = []
    for method, props, body in ch.consume(q, auto_ack=False, inactivity_timeout=5):
        check(method is not None, "timed out waiting for deliveries")
        got.append(body)
        ch.basic_ack(method.delivery_tag)
        if len(got) == 3:
            break
    ch.cancel()
    check(got == [b"m0", b"m1", b"m2"], f"got {got}")
    check(count(q) == 0, "acked messages still in queue")
    ch.queue_delete(q)


def nack_requeue():
    q = queue()
    publish(q, b"n")
    method, _, _ = ch.basic_get(q)
    check(method is not None and not method.redelivered, "first get")
    ch.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = ch.basic_get(q)
    check(method is not None, "requeued message missing")
    check(method.redelivered and body == b"n", f"redelivered={method.redelivered}")
    ch.basic_ack(method.delivery_tag)
    ch.queue_delete(q)


def reject_no_requeue():
    q = queue()
    publish(q, b"r")
    method, _, _ = ch.basic_get(q)
    ch.basic_reject(method.delivery_tag, requeue=False)
    check(count(q) == 0, "rejected message still in queue")
    method, _, _ = ch.basic_get(q)
    check(method is None, "rejected message delivered again")
    ch.queue_delete(q)


def basic_get():
    q = queue()
    method, _, _ = ch.basic_get(q)
    check(method is None, "get on an empty queue returned a message")
    publish(q, b"g1")
    publish(q, b"g2")
    method, props, body = ch.basic_get(q, auto_ack=True)
    check(body == b"g1" and method.message_count == 1, f"{method} {body!r}")
    ch.queue_delete(q)


def settle(got, want):
    """Process events until `got` has `want` items (5 s at most), then 300 ms more."""
    deadline = time.monotonic() + 5
    while len(got) < want and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    conn.process_data_events(time_limit=0.3)


def prefetch():
    q = queue()
    for i in range(5):
        publish(q, b"p%d" % i)
    c = conn.channel()
    c.basic_qos(prefetch_count=2)
    got = []
    c.basic_consume(q, lambda _c, m, p, b: got.append(m), auto_ack=False)
    settle(got, 2)
    check(len(got) == 2, f"{len(got)} unacked deliveries with prefetch 2")
    c.basic_ack(got[0].delivery_tag)
    settle(got, 3)
    check(len(got) == 3, f"{len(got)} deliveries after one ack")
    c.close()
    ch.queue_delete(q)


def cancel_consumer():
    q = queue()
    got = []
    tag = ch.basic_consume(q, lambda _c, m, p, b: got.append(b), auto_ack=True)
    ch.basic_cancel(tag)
    publish(q, b"after-cancel")
    conn.process_data_events(time_limit=0.3)
    check(not got, "delivery after cancel")
    check(eventually(lambda: count(q) == 1), "message not left in the queue")
    ch.queue_delete(q)


def transactions():
    q = queue()
    c = conn.channel()
    c.tx_select()
    c.basic_publish("", q, b"rolled-back")
    c.tx_rollback()
    check(count(q) == 0, "rolled-back publish delivered")
    c.basic_publish("", q, b"committed")
    check(count(q) == 0, "uncommitted publish visible")
    c.tx_commit()
    check(eventually(lambda: count(q) == 1), "committed publish missing")
    method, _, _ = c.basic_get(q)
    c.basic_ack(method.delivery_tag)
    c.tx_rollback()
    c.close()  # the ack was rolled back: closing the channel requeues the message
    check(eventually(lambda: count(q) == 1), "rolled-back ack removed the message")
    ch.queue_delete(q)


def headers_roundtrip():
    q = queue()
    publish(q, b"h", headers=NESTED_HEADERS, content_type="text/plain", priority=3,
            correlation_id="cid", message_id="mid", timestamp=1700000000, type="t",
            app_id="pika", expiration="60000", reply_to="rq", delivery_mode=2)
    method, props, body = ch.basic_get(q, auto_ack=True)
    check(props.headers == NESTED_HEADERS, f"headers {props.headers}")
    for attr, want in [("content_type", "text/plain"), ("priority", 3),
                       ("correlation_id", "cid"), ("message_id", "mid"),
                       ("timestamp", 1700000000), ("type", "t"), ("app_id", "pika"),
                       ("expiration", "60000"), ("reply_to", "rq"), ("delivery_mode", 2)]:
        check(getattr(props, attr) == want, f"{attr}={getattr(props, attr)!r}")
    ch.queue_delete(q)


def large_message():
    q = queue()
    body = bytes(range(256)) * 4096 + b"end"  # 1 MiB + 3: many body frames
    publish(q, body)
    method, _, got = ch.basic_get(q, auto_ack=True)
    check(got == body, f"body of {len(got or b'')} bytes differs")
    ch.queue_delete(q)

def dead_letter_x_death():
    ex, dlx = unique("pika-dl-src"), unique("pika-dlx")
    ch = reopen()
    ch.exchange_declare(exchange=ex, exchange_type="direct")
    ch.exchange_declare(exchange=dlx, exchange_type="fanout")
    work = queue(arguments={"x-dead-letter-exchange": dlx})
    dlq = queue()
    ch.queue_bind(work, ex, routing_key="k1")
    ch.queue_bind(work, ex, routing_key="k2")
    ch.queue_bind(dlq, dlx)
    publish("k1", b"dl", exchange=ex, expiration="60000", headers={"CC": ["k2"], "app": "x"})
    method, _, _ = ch.basic_get(work)
    check(method is not None, "message not routed to the work queue")
    ch.basic_reject(method.delivery_tag, requeue=False)
    check(eventually(lambda: count(dlq) == 1), f"dead-letter queue holds {count(dlq)}")
    method, props, body = ch.basic_get(dlq, auto_ack=True)
    check(body == b"dl", f"body {body!r}")
    check(method.exchange == dlx and method.routing_key == "k1", f"{method}")
    check(props.expiration is None, f"expiration {props.expiration!r} kept")
    headers = props.headers
    # RabbitMQ sorts the header table it rewrites.
    check(list(headers) == ["CC", "app", "x-death", "x-first-death-exchange",
                            "x-first-death-queue", "x-first-death-reason"],
          f"header keys {list(headers)}")
    check(headers["CC"] == ["k2"] and headers["app"] == "x", f"headers {headers}")
    check(headers["x-first-death-reason"] == "rejected"
          and headers["x-first-death-queue"] == work
          and headers["x-first-death-exchange"] == ex, f"x-first-death-* {headers}")
    deaths = headers["x-death"]
    check(isinstance(deaths, list) and len(deaths) == 1, f"x-death {deaths!r}")
    death = deaths[0]
    check(list(death) == ["count", "reason", "queue", "time", "exchange", "routing-keys",
                          "original-expiration"], f"x-death keys {list(death)}")
    check(death["count"] == 1 and isinstance(death["count"], int), f"count {death['count']!r}")
    check(death["reason"] == "rejected" and death["queue"] == work and death["exchange"] == ex,
          f"x-death {death}")
    check(death["routing-keys"] == ["k1", "k2"], f"routing-keys {death['routing-keys']}")
    check(death["original-expiration"] == "60000", f"{death['original-expiration']!r}")
    check(isinstance(death["time"], datetime.datetime), f"time {death['time']!r}")
    age = abs(datetime.datetime.now(datetime.timezone.utc).timestamp()
              - death["time"].replace(tzinfo=datetime.timezone.utc).timestamp())
    check(age < 300, f"time {death['time']} is not now")

    # With x-dead-letter-routing-key: routed by that key, CC header dropped.
    dlx2 = unique("pika-dlx-direct")
    ch.exchange_declare(exchange=dlx2, exchange_type="direct")
    work2 = queue(arguments={"x-dead-letter-exchange": dlx2,
                             "x-dead-letter-routing-key": "dead"})
    dlq2 = queue()
    ch.queue_bind(work2, ex, routing_key="k3")
    ch.queue_bind(dlq2, dlx2, routing_key="dead")
    publish("k3", b"dl2", exchange=ex, headers={"CC": ["k4"]})
    method, _, _ = ch.basic_get(work2)
    ch.basic_nack(method.delivery_tag, requeue=False)
    check(eventually(lambda: count(dlq2) == 1), f"dead-letter queue holds {count(dlq2)}")
    method, props, _ = ch.basic_get(dlq2, auto_ack=True)
    check(method.exchange == dlx2 and method.routing_key == "dead", f"{method}")
    check("CC" not in props.headers, f"CC kept: {props.headers}")
    death = props.headers["x-death"][0]
    check(death["routing-keys"] == ["k3", "k4"], f"routing-keys {death['routing-keys']}")
    check("original-expiration" not in death, f"{death}")
    for q in (work, dlq, work2, dlq2):
        ch.queue_delete(q)
    for x in (ex, dlx, dlx2):
        ch.exchange_delete(x)


def dead_letter_ttl_retry_loop():
    work, retry = unique("pika-work"), unique("pika-retry")
    ch = reopen()
    ch.queue_declare(queue=work, arguments={"x-dead-letter-exchange": "",
                                            "x-dead-letter-routing-key": retry})
    ch.queue_declare(queue=retry, arguments={"x-message-ttl": 50,
                                             "x-dead-letter-exchange": "",
                                             "x-dead-letter-routing-key": work})
    publish(work, b"retry")
    rounds = 3
    for n in range(1, rounds + 1):
        got = None
        deadline = time.monotonic() + 10
        while got is None and time.monotonic() < deadline:
            method, props, body = ch.basic_get(work)
            if method is not None:
                got = (method, props)
            else:
                time.sleep(0.02)
        check(got is not None, f"round {n}: message did not come back")
        method, props = got
        deaths = (props.headers or {}).get("x-death", [])
        if n > 1:
            check([(d["queue"], d["reason"]) for d in deaths]
                  == [(retry, "expired"), (work, "rejected")], f"round {n}: {deaths}")
            check([d["count"] for d in deaths] == [n - 1, n - 1], f"round {n}: {deaths}")
            check(all(isinstance(d["count"], int) for d in deaths), f"{deaths}")
            check(deaths[0]["exchange"] == "" and deaths[0]["routing-keys"] == [retry],
                  f"{deaths[0]}")
            check(props.headers["x-first-death-reason"] == "rejected"
                  and props.headers["x-first-death-queue"] == work, f"{props.headers}")
            # RabbitMQ writes a message's first x-death entry in the order count, reason,
            # queue, time, exchange, routing-keys; an entry added or updated while the
            # array exists has its keys sorted.
            first_order = ["count", "reason", "queue", "time", "exchange", "routing-keys"]
            want_keys = [sorted(first_order), first_order if n == 2 else sorted(first_order)]
            check([list(d) for d in deaths] == want_keys,
                  f"round {n}: x-death keys {[list(d) for d in deaths]}")
        else:
            check(not deaths, f"fresh message has x-death {deaths}")
        ch.basic_reject(method.delivery_tag, requeue=False)
    ch.queue_delete(work)
    ch.queue_delete(retry)


def max_length_reject_publish():
    c = conn.channel()
    c.confirm_delivery()
    q = queue(arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    c.basic_publish("", q, b"m1")
    c.basic_publish("", q, b"m2")
    try:
        c.basic_publish("", q, b"m3")
        raise AssertionError("third publish over x-max-length was confirmed")
    except pika.exceptions.NackError:
        pass  # pika raises NackError (with no message list) when the broker nacks
    check(count(q) == 2, f"count {count(q)}")
    c.close()
    bodies = [reopen().basic_get(q, auto_ack=True)[2] for _ in range(2)]
    check(bodies == [b"m1", b"m2"], f"{bodies}")
    # drop-head: the oldest message makes room.
    q2 = queue(arguments={"x-max-length": 2})
    for i in (1, 2, 3):
        publish(q2, b"d%d" % i)
    check(eventually(lambda: count(q2) == 2), f"count {count(q2)}")
    bodies = [ch.basic_get(q2, auto_ack=True)[2] for _ in range(3)]
    check(bodies == [b"d2", b"d3", None], f"{bodies}")
    ch.queue_delete(q)
    ch.queue_delete(q2)


def priority_order():
    q = queue(arguments={"x-max-priority": 10})
    sent = [(b"p1", 1), (b"p5a", 5), (b"p9", 9), (b"p0", 0), (b"p5b", 5), (b"p200", 200),
            (b"none", None)]
    for body, prio in sent:
        publish(q, body, priority=prio)
    check(eventually(lambda: count(q) == len(sent)), f"count {count(q)}")
    got = []
    for method, props, body in ch.consume(q, auto_ack=False, inactivity_timeout=5):
        check(method is not None, f"timed out after {got}")
        got.append((body, props.priority))
        ch.basic_ack(method.delivery_tag)
        if len(got) == len(sent):
            break
    ch.cancel()
    # Above x-max-priority counts as the max; no priority counts as 0; FIFO within one.
    check(got == [(b"p200", 200), (b"p9", 9), (b"p5a", 5), (b"p5b", 5), (b"p1", 1),
                  (b"p0", 0), (b"none", None)], f"order {got}")
    ch.queue_delete(q)


def delayed_message_exchange():
    # rabbitmq-delayed-message-exchange's interface (Warren only: the reference RabbitMQ
    # has no such plugin). The message with x-delay 300 is held and routed after the one
    # with x-delay 0, not before 300 ms, with x-delay set to -300 (as the plugin does).
    c = conn.channel()
    c.confirm_delivery()
    x = unique("pika-delayed")
    c.exchange_declare(x, exchange_type="x-delayed-message",
                       arguments={"x-delayed-type": "direct"})
    q = unique("pika-delayed-q")
    c.queue_declare(queue=q, exclusive=True)
    c.queue_bind(q, x, routing_key="k")
    start = time.monotonic()
    # With confirms on, basic_publish returns once the broker acked.
    c.basic_publish(x, "k", b"later", pika.BasicProperties(headers={"x-delay": 300}))
    c.basic_publish(x, "k", b"now", pika.BasicProperties(headers={"x-delay": 0}))
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        method, props, body = c.basic_get(q, auto_ack=True)
        if method is None:
            conn.process_data_events(time_limit=0.01)
            continue
        got.append((body, time.monotonic() - start, props.headers))
    check([g[0] for g in got] == [b"now", b"later"], f"order {got}")
    check(got[1][1] >= 0.3, f"the delayed message arrived after {got[1][1]:.3f} s")
    check(got[1][2].get("x-delay") == -300, f"headers {got[1][2]}")
    c.exchange_delete(x)
    c.close()


def quorum_delivery_limit():
    """A quorum queue with x-delivery-limit 2 and a DLX: publish with confirms, consume,
    nack with requeue until the message passes the limit and is dead-lettered."""
    dlx = unique("pika-qq-dlx")
    cch = conn.channel()
    cch.confirm_delivery()
    cch.exchange_declare(exchange=dlx, exchange_type="fanout")
    dlq = unique("pika-qq-dlq")
    cch.queue_declare(queue=dlq, durable=True)
    cch.queue_bind(dlq, dlx)
    qq = unique("pika-qq")
    ok = cch.queue_declare(queue=qq, durable=True, arguments={
        "x-queue-type": "quorum", "x-delivery-limit": 2, "x-dead-letter-exchange": dlx})
    check(ok.method.message_count == 0, f"declare-ok {ok.method}")
    cch.basic_publish("", qq, b"poison", pika.BasicProperties(headers={"app": "x"}))
    seen = []

    def on_message(chan, method, props, body):
        seen.append((method.redelivered, (props.headers or {}).get("x-delivery-count")))
        chan.basic_nack(method.delivery_tag, requeue=True)

    cch.basic_consume(qq, on_message)
    deadline = time.time() + 10
    while count(dlq) == 0 and time.time() < deadline:
        conn.process_data_events(time_limit=0.1)
    check(seen == [(False, None), (True, 1), (True, 2)], f"deliveries {seen}")
    check(count(dlq) == 1 and count(qq) == 0, f"dlq {count(dlq)}, quorum queue {count(qq)}")
    method, props, body = cch.basic_get(dlq, auto_ack=True)
    check(body == b"poison", f"body {body!r}")
    headers = props.headers
    check(headers["x-first-death-reason"] == "delivery_limit", f"headers {headers}")
    check(headers["x-death"][0]["reason"] == "delivery_limit", f"x-death {headers['x-death']}")
    check("x-delivery-count" not in headers, f"headers {headers}")
    cch.close()
    reopen().queue_delete(qq)
    reopen().queue_delete(dlq)
    reopen().exchange_delete(dlx)


def close_cleanly():
    reopen().close()
    conn.close()
    check(conn.is_closed, "connection not closed")


if __name__ == "__main__":
    run([
        ("connect_heartbeat", connect_heartbeat),
        ("exchange_types", exchange_types),
        ("exchange_to_exchange_binding", exchange_to_exchange),
        ("queue_durable", queue_durable),
        ("queue_exclusive", queue_exclusive),
        ("queue_auto_delete", queue_auto_delete),
        ("queue_server_named", queue_server_named),
        ("passive_declare_missing_404", passive_missing_404),
        ("publish_confirms", publish_confirms),
        ("mandatory_unroutable_return", mandatory_return),
        ("consume_manual_ack", consume_manual_ack),
        ("nack_requeue_redelivered", nack_requeue),
        ("reject_without_requeue", reject_no_requeue),
        ("basic_get_empty_and_nonempty", basic_get),
        ("prefetch_honoured", prefetch),
        ("cancel_consumer", cancel_consumer),
        ("tx_commit_rollback", transactions),
        ("headers_nested_roundtrip", headers_roundtrip),
        ("large_message_roundtrip", large_message),
        ("dead_letter_x_death", dead_letter_x_death),
        ("dead_letter_ttl_retry_loop", dead_letter_ttl_retry_loop),
        ("max_length_reject_publish", max_length_reject_publish),
        ("priority_order", priority_order),
        ("delayed_message_exchange", delayed_message_exchange),
        ("quorum_delivery_limit", quorum_delivery_limit),
        ("close_cleanly", close_cleanly),
    ])
