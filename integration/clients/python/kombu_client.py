"""Client-compatibility scenarios with kombu on its py-amqp transport. AMQP_URL names the broker.

kombu's own API is used where it has the operation; where it does not (transactions), the
kombu channel is used directly: it is py-amqp's Channel, the wire client under test.
"""

import datetime
import socket
import time

import amqp.exceptions
from kombu import Connection, Consumer, Exchange, Producer, Queue

from runner import NESTED_HEADERS, Skip, check, eventually, run, unique, url

HEARTBEAT = 2

state = {}


def pyamqp_url():
    return "pyamqp" + url()[len("amqp"):]


def connect(**kw):
    conn = Connection(pyamqp_url(), heartbeat=HEARTBEAT, **kw)
    conn.connect()
    return conn


def channel():
    ch = state.get("ch")
    if ch is None or not ch.is_open:
        ch = state["ch"] = state["conn"].channel()
    return ch


def queue(**kw):
    q = Queue(unique("kombu"), channel=channel(), **kw)
    q.declare()
    return q


def count(name):
    _, messages, _ = Queue(name, channel=channel()).queue_declare(passive=True)
    return messages


def publish(routing_key, body, exchange="", **kw):
    Producer(channel()).publish(body, routing_key=routing_key, exchange=exchange,
                                serializer=None, content_type="application/data", **kw)


def drain(conn, timeout):
    try:
        conn.drain_events(timeout=timeout)
    except socket.timeout:
        pass


def drain_for(conn, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        drain(conn, max(0.01, deadline - time.monotonic()))


def connect_heartbeat():
    conn = state["conn"] = connect()
    negotiated = conn.connection.heartbeat
    check(negotiated == HEARTBEAT, f"negotiated heartbeat {negotiated}")
    deadline = time.monotonic() + HEARTBEAT * 2.5
    while time.monotonic() < deadline:
        conn.heartbeat_check(rate=4)  # sends ours, checks the broker's
        drain(conn, HEARTBEAT / 4)  # reads the broker's heartbeats
    check(conn.connected, "connection lost while idle with heartbeats")
    q = queue(exclusive=True)
    check(count(q.name) == 0, "round trip after idle period")


def exchange_types():
    for kind in ("direct", "fanout", "topic", "headers"):
        ex = Exchange(unique(f"kombu-{kind}"), type=kind, channel=channel())
        ex.declare()
        if kind == "headers":
            q = Queue(unique("kombu"), ex, channel=channel(),
                      binding_arguments={"x-match": "all", "k": "v"})
        else:
            q = Queue(unique("kombu"), ex, routing_key="a.b", channel=channel())
        q.declare()
        publish("a.b", b"m", exchange=ex, headers={"k": "v"})
        msg = q.get(no_ack=True)
        check(msg is not None and msg.body == b"m", f"{kind} exchange did not route")
        ex.delete()
        q.delete()


def exchange_to_exchange():
    src = Exchange(unique("kombu-src"), type="topic", channel=channel())
    dst = Exchange(unique("kombu-dst"), type="fanout", channel=channel())
    src.declare()
    dst.declare()
    dst.bind_to(src, routing_key="a.#")
    q = Queue(unique("kombu"), dst, channel=channel())
    q.declare()
    publish("a.b.c", b"e2e", exchange=src)
    publish("b.c", b"nope", exchange=src)
    check(eventually(lambda: count(q.name) == 1), f"count {count(q.name)}")
    dst.unbind_from(src, routing_key="a.#")
    src.delete()
    dst.delete()
    q.delete()


def queue_durable():
    q = queue(durable=True)
    Queue(q.name, durable=True, channel=channel()).declare()
    try:
        Queue(q.name, durable=False, channel=channel()).declare()
        raise AssertionError("inequivalent redeclare succeeded")
    except amqp.exceptions.PreconditionFailed as e:
        check(e.reply_code == 406, f"{e!r}")
    Queue(q.name, channel=channel()).delete()


def queue_exclusive():
    q = queue(exclusive=True)
    other = connect()
    try:
        try:
            Consumer(other.channel(), queues=[Queue(q.name, no_declare=True)]).consume()
            raise AssertionError("another connection consumed an exclusive queue")
        except amqp.exceptions.ResourceLocked as e:
            check(e.reply_code == 405, f"{e!r}")
    finally:
        other.release()
    q.delete()


def queue_auto_delete():
    q = queue(auto_delete=True)
    consumer = Consumer(channel(), queues=[q], callbacks=[lambda b, m: None])
    consumer.consume()
    consumer.cancel()
    try:
        count(q.name)
        raise AssertionError("auto-delete queue still exists after its last consumer left")
    except amqp.exceptions.NotFound:
        pass


def queue_server_named():
    q = Queue("", exclusive=True, channel=channel())
    q.declare()
    check(q.name.startswith("amq.gen-"), f"server-named queue {q.name!r}")
    q.delete()


def passive_missing_404():
    try:
        count(unique("kombu-missing"))
        raise AssertionError("passive declare of a missing queue succeeded")
    except amqp.exceptions.NotFound as e:
        check(e.reply_code == 404 and "NOT_FOUND" in e.reply_text, f"{e!r}")
    check(state["conn"].connected, "connection closed on a channel error")
    channel()


def publish_confirms():
    conn = connect(transport_options={"confirm_publish": True})
    try:
        ch = conn.channel()
        q = Queue(unique("kombu-confirm"), durable=True, channel=ch)
        q.declare()
        producer = Producer(ch)
        for i in range(20):
            # With confirm_publish, publish waits for basic.ack (MessageNacked on nack).
            producer.publish(b"c%d" % i, routing_key=q.name, delivery_mode=2,
                             serializer=None, content_type="application/data")
        check(eventually(lambda: count(q.name) == 20), "count")
        q.delete()
    finally:
        conn.release()


def mandatory_return():
    returned = []
    ch = state["conn"].channel()
    producer = Producer(ch, on_return=lambda exc, exchange, key, msg: returned.append((exc, key, msg)))
    key = unique("kombu-unroutable")
    producer.publish(b"ret", routing_key=key, mandatory=True, serializer=None,
                     content_type="application/data")
    deadline = time.monotonic() + 5
    while not returned and time.monotonic() < deadline:
        drain(state["conn"], 0.1)
    check(returned, "no basic.return")
    exc, rkey, msg = returned[0]
    check(exc.reply_code == 312 and rkey == key and msg.body == b"ret", f"{exc!r} {rkey}")
    ch.close()


def consume_manual_ack():
    q = queue()
    for i in range(3):
        publish(q.name, b"m%d" % i)
    got = []

    def on_message(body, message):
        got.append(body)
        message.ack()

    with Consumer(channel(), queues=[q], callbacks=[on_message], no_ack=False):
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            drain(state["conn"], 0.2)
    check(got == [b"m0", b"m1", b"m2"], f"got {got}")
    check(count(q.name) == 0, "acked messages still in queue")
    q.delete()


def nack_requeue():
    raise Skip("py-amqp has no basic.nack; see reject_requeue_redelivered")


def reject_requeue():
    q = queue()
    publish(q.name, b"n")
    msg = q.get()
    check(msg is not None and not msg.delivery_info["redelivered"], "first get")
    msg.requeue()  # basic.reject requeue=true
    msg = q.get()
    check(msg is not None and msg.delivery_info["redelivered"], "not redelivered")
    msg.ack()
    q.delete()


def reject_no_requeue():
    q = queue()
    publish(q.name, b"r")
    msg = q.get()
    msg.reject(requeue=False)
    check(count(q.name) == 0, "rejected message still in queue")
    check(q.get() is None, "rejected message delivered again")
    q.delete()


def basic_get():
    q = queue()
    check(q.get() is None, "get on an empty queue returned a message")
    publish(q.name, b"g1")
    publish(q.name, b"g2")
    msg = q.get(no_ack=True)
    check(msg.body == b"g1" and msg.delivery_info["message_count"] == 1, f"{msg.delivery_info}")
    q.delete()


def settle(got, want):
    """Drain events until `got` has `want` items (5 s at most), then 300 ms more."""
    deadline = time.monotonic() + 5
    while len(got) < want and time.monotonic() < deadline:
        drain(state["conn"], 0.05)
    drain_for(state["conn"], 0.3)


def prefetch():
    q = queue()
    for i in range(5):
        publish(q.name, b"p%d" % i)
    got = []
    ch = state["conn"].channel()
    consumer = Consumer(ch, queues=[Queue(q.name, no_declare=True)],
                        callbacks=[lambda body, msg: got.append(msg)], no_ack=False)
    consumer.qos(prefetch_count=2)
    consumer.consume()
    settle(got, 2)
    check(len(got) == 2, f"{len(got)} unacked deliveries with prefetch 2")
    got[0].ack()
    settle(got, 3)
    check(len(got) == 3, f"{len(got)} deliveries after one ack")
    ch.close()
    q.delete()


def cancel_consumer():
    q = queue()
    got = []
    consumer = Consumer(channel(), queues=[q], callbacks=[lambda b, m: got.append(b)], no_ack=True)
    consumer.consume()
    consumer.cancel()
    publish(q.name, b"after-cancel")
    drain_for(state["conn"], 0.3)
    check(not got, "delivery after cancel")
    check(eventually(lambda: count(q.name) == 1), "message not left in the queue")
    q.delete()


def transactions():
    q = queue()
    ch = state["conn"].channel()
    ch.tx_select()
    producer = Producer(ch)
    producer.publish(b"rolled-back", routing_key=q.name, serializer=None, content_type="a/b")
    ch.tx_rollback()
    check(count(q.name) == 0, "rolled-back publish delivered")
    producer.publish(b"committed", routing_key=q.name, serializer=None, content_type="a/b")
    check(count(q.name) == 0, "uncommitted publish visible")
    ch.tx_commit()
    check(eventually(lambda: count(q.name) == 1), "committed publish missing")
    ch.close()
    q.delete()


def headers_roundtrip():
    q = queue()
    publish(q.name, b"h", headers=NESTED_HEADERS, priority=3, correlation_id="cid",
            message_id="mid", type="t", app_id="kombu", expiration=60, reply_to="rq",
            delivery_mode=2)
    msg = q.get(no_ack=True)
    check(msg.headers == NESTED_HEADERS, f"headers {msg.headers}")
    props = msg.properties
    for attr, want in [("priority", 3), ("correlation_id", "cid"), ("message_id", "mid"),
                       ("type", "t"), ("app_id", "kombu"), ("reply_to", "rq"),
                       ("delivery_mode", 2), ("expiration", "60000")]:
        check(props.get(attr) == want, f"{attr}={props.get(attr)!r}")
    q.delete()


def large_message():
    q = queue()
    body = bytes(range(256)) * 4096 + b"end"  # 1 MiB + 3: many body frames
    publish(q.name, body)
    msg = q.get(no_ack=True)
    check(msg.body == body, f"body of {len(msg.body)} bytes differs")
    q.delete()


def dead_letter_x_death():
    ex = Exchange(unique("kombu-dl-src"), type="direct", channel=channel())
    dlx = Exchange(unique("kombu-dlx"), type="fanout", channel=channel())
    ex.declare()
    dlx.declare()
    work = Queue(unique("kombu-work"), ex, routing_key="k1", channel=channel(),
                 queue_arguments={"x-dead-letter-exchange": dlx.name})
    work.declare()
    work.bind_to(ex, routing_key="k2")
    dlq = Queue(unique("kombu-dlq"), dlx, channel=channel())
    dlq.declare()
    publish("k1", b"dl", exchange=ex, expiration=60, headers={"CC": ["k2"], "app": "x"})
    msg = work.get()
    check(msg is not None, "message not routed")
    msg.reject(requeue=False)
    check(eventually(lambda: count(dlq.name) == 1), f"dead-letter queue holds {count(dlq.name)}")
    msg = dlq.get(no_ack=True)
    check(msg.body == b"dl" and msg.delivery_info["exchange"] == dlx.name
          and msg.delivery_info["routing_key"] == "k1", f"{msg.delivery_info}")
    check("expiration" not in msg.properties, f"expiration kept: {msg.properties}")
    h = msg.headers
    check(list(h) == ["CC", "app", "x-death", "x-first-death-exchange", "x-first-death-queue",
                      "x-first-death-reason"], f"header keys {list(h)}")
    check(h["x-first-death-reason"] == "rejected" and h["x-first-death-queue"] == work.name
          and h["x-first-death-exchange"] == ex.name, f"{h}")
    check(len(h["x-death"]) == 1, f"{h['x-death']}")
    d = h["x-death"][0]
    check(list(d) == ["count", "reason", "queue", "time", "exchange", "routing-keys",
                      "original-expiration"], f"x-death keys {list(d)}")
    check(d["count"] == 1 and type(d["count"]) is int, f"count {d['count']!r}")
    check(d["reason"] == "rejected" and d["queue"] == work.name and d["exchange"] == ex.name,
          f"{d}")
    check(d["routing-keys"] == ["k1", "k2"], f"routing-keys {d['routing-keys']}")
    check(d["original-expiration"] == "60000", f"{d['original-expiration']!r}")
    check(isinstance(d["time"], datetime.datetime), f"time {d['time']!r}")

    dlx2 = Exchange(unique("kombu-dlx-direct"), type="direct", channel=channel())
    dlx2.declare()
    work2 = Queue(unique("kombu-work"), ex, routing_key="k3", channel=channel(),
                  queue_arguments={"x-dead-letter-exchange": dlx2.name,
                                   "x-dead-letter-routing-key": "dead"})
    work2.declare()
    dlq2 = Queue(unique("kombu-dlq"), dlx2, routing_key="dead", channel=channel())
    dlq2.declare()
    publish("k3", b"dl2", exchange=ex, headers={"CC": ["k4"]})
    work2.get().reject(requeue=False)
    check(eventually(lambda: count(dlq2.name) == 1), "nothing dead-lettered (DLRK)")
    msg = dlq2.get(no_ack=True)
    check(msg.delivery_info["routing_key"] == "dead" and "CC" not in msg.headers,
          f"{msg.delivery_info} {msg.headers}")
    d = msg.headers["x-death"][0]
    check(d["routing-keys"] == ["k3", "k4"] and "original-expiration" not in d, f"{d}")
    for q in (work, dlq, work2, dlq2):
        q.delete()
    for x in (ex, dlx, dlx2):
        x.delete()


def max_length_reject_publish():
    conn = connect(transport_options={"confirm_publish": True})
    try:
        ch = conn.channel()
        q = Queue(unique("kombu-maxlen"), channel=ch, max_length=2,
                  queue_arguments={"x-overflow": "reject-publish"})
        q.declare()
        producer = Producer(ch)
        for body in (b"m1", b"m2"):
            producer.publish(body, routing_key=q.name, serializer=None,
                             content_type="application/data")
        try:
            producer.publish(b"m3", routing_key=q.name, serializer=None,
                             content_type="application/data")
            raise AssertionError("third publish over x-max-length was confirmed")
        except amqp.exceptions.MessageNacked:
            pass
        check(count(q.name) == 2, f"count {count(q.name)}")
        q.delete()
    finally:
        conn.release()
    q2 = Queue(unique("kombu-drophead"), channel=channel(), max_length=2)
    q2.declare()
    for i in (1, 2, 3):
        publish(q2.name, b"d%d" % i)
    check(eventually(lambda: count(q2.name) == 2), f"count {count(q2.name)}")
    bodies = [q2.get(no_ack=True).body for _ in range(2)]
    check(bodies == [b"d2", b"d3"], f"{bodies}")
    q2.delete()


def priority_order():
    q = Queue(unique("kombu-prio"), channel=channel(), max_priority=10)
    q.declare()
    sent = [(b"p1", 1), (b"p5a", 5), (b"p9", 9), (b"p0", 0), (b"p5b", 5), (b"p200", 200)]
    for body, prio in sent:
        publish(q.name, body, priority=prio)
    check(eventually(lambda: count(q.name) == len(sent)), f"count {count(q.name)}")
    got = []
    consumer = Consumer(channel(), queues=[q], callbacks=[
        lambda body, m: (got.append((body, m.properties.get("priority"))), m.ack())])
    consumer.consume()
    deadline = time.monotonic() + 5
    while len(got) < len(sent) and time.monotonic() < deadline:
        drain(state["conn"], 0.1)
    consumer.cancel()
    # Above x-max-priority counts as the max; FIFO within one priority.
    check(got == [(b"p200", 200), (b"p9", 9), (b"p5a", 5), (b"p5b", 5), (b"p1", 1),
                  (b"p0", 0)], f"order {got}")
    q.delete()


def close_cleanly():
    channel().close()
    state["conn"].release()
    check(not state["conn"].connected, "connection not closed")


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
        ("reject_requeue_redelivered", reject_requeue),
        ("reject_without_requeue", reject_no_requeue),
        ("basic_get_empty_and_nonempty", basic_get),
        ("prefetch_honoured", prefetch),
        ("cancel_consumer", cancel_consumer),
        ("tx_commit_rollback", transactions),
        ("headers_nested_roundtrip", headers_roundtrip),
        ("large_message_roundtrip", large_message),
        ("dead_letter_x_death", dead_letter_x_death),
        ("max_length_reject_publish", max_length_reject_publish),
        ("priority_order", priority_order),
        ("close_cleanly", close_cleanly),
    ])
