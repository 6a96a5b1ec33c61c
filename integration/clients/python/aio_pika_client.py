"""Client-compatibility scenarios with aio-pika (asyncio, on aiormq). AMQP_URL names the broker."""

import asyncio
import datetime
import time

import aio_pika
import aio_pika.patterns
import aiormq.exceptions
from aio_pika import DeliveryMode, ExchangeType, Message

from runner import NESTED_HEADERS, check, run, unique, url

HEARTBEAT = 2

state = {}


async def connect():
    sep = "&" if "?" in url() else "?"
    return await aio_pika.connect(f"{url()}{sep}heartbeat={HEARTBEAT}")


async def chan(**kw):
    return await state["conn"].channel(**kw)


async def main_channel():
    ch = state.get("ch")
    if ch is None or ch.is_closed:
        ch = state["ch"] = await chan()
    return ch


async def queue(**kw):
    ch = await main_channel()
    return await ch.declare_queue(unique("aiopika"), **kw)


async def count(name):
    ch = await main_channel()
    q = await ch.declare_queue(name, passive=True)
    return q.declaration_result.message_count


async def publish(routing_key, body, exchange=None, **props):
    ch = await main_channel()
    ex = exchange or ch.default_exchange
    await ex.publish(Message(body, **props), routing_key=routing_key)


async def eventually(fn, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await fn() or asyncio.get_running_loop().time() > deadline:
            return await fn()
        await asyncio.sleep(0.05)


async def connect_heartbeat():
    conn = state["conn"] = await connect()
    negotiated = conn.transport.connection.heartbeat_timeout
    check(negotiated == HEARTBEAT, f"negotiated heartbeat {negotiated}")
    await asyncio.sleep(HEARTBEAT * 2.5)
    check(not conn.is_closed, "connection closed while idle with heartbeats")
    q = await queue(exclusive=True)
    check(await eventually(lambda: _eq(count(q.name), 0)), "round trip after idle period")


async def exchange_types():
    ch = await main_channel()
    for kind in (ExchangeType.DIRECT, ExchangeType.FANOUT, ExchangeType.TOPIC, ExchangeType.HEADERS):
        ex = await ch.declare_exchange(unique(f"aiopika-{kind.value}"), kind)
        q = await queue()
        if kind == ExchangeType.HEADERS:
            await q.bind(ex, arguments={"x-match": "all", "k": "v"})
        else:
            await q.bind(ex, routing_key="a.b")
        await ex.publish(Message(b"m", headers={"k": "v"}), routing_key="a.b")
        msg = await q.get(no_ack=True, fail=False)
        check(msg is not None and msg.body == b"m", f"{kind.value} exchange did not route")
        await ex.delete()
        await q.delete(if_unused=False, if_empty=False)


async def exchange_to_exchange():
    ch = await main_channel()
    src = await ch.declare_exchange(unique("aiopika-src"), ExchangeType.TOPIC)
    dst = await ch.declare_exchange(unique("aiopika-dst"), ExchangeType.FANOUT)
    await dst.bind(src, routing_key="a.#")
    q = await queue()
    await q.bind(dst)
    await src.publish(Message(b"e2e"), routing_key="a.b.c")
    await src.publish(Message(b"nope"), routing_key="b.c")
    check(await eventually(lambda: _eq(count(q.name), 1)), "expected 1 message via e2e")
    await dst.unbind(src, routing_key="a.#")
    await src.delete()
    await dst.delete()
    await q.delete(if_unused=False, if_empty=False)


async def _ignore(_msg):
    pass


def collector(into):
    async def collect(msg):
        into.append(msg)
    return collect


async def _eq(coro, want):
    return (await coro) == want


async def queue_durable():
    q = await queue(durable=True)
    ch = await main_channel()
    await ch.declare_queue(q.name, durable=True)
    try:
        await ch.declare_queue(q.name, durable=False)
        raise AssertionError("inequivalent redeclare succeeded")
    except aiormq.exceptions.ChannelPreconditionFailed:
        pass
    await (await main_channel()).queue_delete(q.name)


async def queue_exclusive():
    q = await queue(exclusive=True)
    other = await connect()
    try:
        och = await other.channel()
        try:
            oq = await och.get_queue(q.name, ensure=False)
            await oq.consume(_ignore)
            raise AssertionError("another connection consumed an exclusive queue")
        except aiormq.exceptions.ChannelLockedResource:
            pass
    finally:
        await other.close()
    await q.delete(if_unused=False, if_empty=False)


async def queue_auto_delete():
    q = await queue(auto_delete=True)
    tag = await q.consume(_ignore)
    await q.cancel(tag)
    try:
        await count(q.name)
        raise AssertionError("auto-delete queue still exists after its last consumer left")
    except aiormq.exceptions.ChannelNotFoundEntity:
        pass


async def queue_server_named():
    ch = await main_channel()
    q = await ch.declare_queue(exclusive=True)
    check(q.name.startswith("amq.gen-"), f"server-named queue {q.name!r}")
    await q.delete(if_unused=False, if_empty=False)


async def passive_missing_404():
    ch = await main_channel()
    try:
        await ch.declare_queue(unique("aiopika-missing"), passive=True)
        raise AssertionError("passive declare of a missing queue succeeded")
    except aiormq.exceptions.ChannelNotFoundEntity as e:
        check("NOT_FOUND" in str(e), f"{e!r}")
    check(not state["conn"].is_closed, "connection closed on a channel error")
    await main_channel()


async def publish_confirms():
    ch = await chan(publisher_confirms=True)
    q = await ch.declare_queue(unique("aiopika-confirm"), durable=True)
    confirms = await asyncio.gather(*[
        ch.default_exchange.publish(
            Message(b"c%d" % i, delivery_mode=DeliveryMode.PERSISTENT), routing_key=q.name)
        for i in range(20)
    ])
    check(all(isinstance(c, aiormq.spec.Basic.Ack) for c in confirms), f"{confirms}")
    check(await eventually(lambda: _eq(count(q.name), 20)), "count")
    await q.delete(if_unused=False, if_empty=False)
    await ch.close()


async def mandatory_return():
    ch = await chan(publisher_confirms=True, on_return_raises=False)
    returned = asyncio.get_running_loop().create_future()
    ch.return_callbacks.add(lambda _ch, m: returned.done() or returned.set_result(m))
    key = unique("aiopika-unroutable")
    await ch.default_exchange.publish(Message(b"ret"), routing_key=key, mandatory=True)
    msg = await asyncio.wait_for(returned, 5)
    check(msg.body == b"ret" and msg.routing_key == key, f"{msg}")
    await ch.close()
    ch = await chan(publisher_confirms=True, on_return_raises=True)
    try:
        await ch.default_exchange.publish(Message(b"ret2"), routing_key=key, mandatory=True)
        raise AssertionError("returned publish did not raise")
    except aio_pika.exceptions.DeliveryError as e:
        check(e.message.body == b"ret2", f"{e!r}")
        check(e.frame.reply_code == 312, f"reply code {e.frame.reply_code}")
    await ch.close()


async def consume_manual_ack():
    q = await queue()
    for i in range(3):
        await publish(q.name, b"m%d" % i)
    got = []
    async with q.iterator() as it:
        async for msg in it:
            got.append(msg.body)
            await msg.ack()
            if len(got) == 3:
                break
    check(got == [b"m0", b"m1", b"m2"], f"got {got}")
    check(await eventually(lambda: _eq(count(q.name), 0)), "acked messages still in queue")
    await q.delete(if_unused=False, if_empty=False)


async def nack_requeue():
    q = await queue()
    await publish(q.name, b"n")
    msg = await q.get()
    check(not msg.redelivered, "first delivery redelivered")
    await msg.nack(requeue=True)
    msg = await q.get()
    check(msg.redelivered and msg.body == b"n", f"redelivered={msg.redelivered}")
    await msg.ack()
    await q.delete(if_unused=False, if_empty=False)


async def reject_no_requeue():
    q = await queue()
    await publish(q.name, b"r")
    msg = await q.get()
    await msg.reject(requeue=False)
    check(await eventually(lambda: _eq(count(q.name), 0)), "rejected message still in queue")
    check(await q.get(fail=False) is None, "rejected message delivered again")
    await q.delete(if_unused=False, if_empty=False)


async def basic_get():
    q = await queue()
    check(await q.get(fail=False) is None, "get on an empty queue returned a message")
    try:
        await q.get()
        raise AssertionError("get(fail=True) on an empty queue did not raise")
    except aio_pika.exceptions.QueueEmpty:
        pass
    await publish(q.name, b"g1")
    await publish(q.name, b"g2")
    msg = await q.get(no_ack=True)
    check(msg.body == b"g1" and msg.message_count == 1, f"{msg.body!r} {msg.message_count}")
    await q.delete(if_unused=False, if_empty=False)


async def settle(got, want):
    """Wait until `got` has `want` items (5 s at most), then 300 ms more."""
    for _ in range(100):
        if len(got) >= want:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)


async def prefetch():
    q = await queue()
    for i in range(5):
        await publish(q.name, b"p%d" % i)
    ch = await chan()
    await ch.set_qos(prefetch_count=2)
    cq = await ch.get_queue(q.name, ensure=False)
    got = []
    await cq.consume(collector(got))
    await settle(got, 2)
    check(len(got) == 2, f"{len(got)} unacked deliveries with prefetch 2")
    await got[0].ack()
    await settle(got, 3)
    check(len(got) == 3, f"{len(got)} deliveries after one ack")
    await ch.close()
    await q.delete(if_unused=False, if_empty=False)


async def cancel_consumer():
    q = await queue()
    got = []
    tag = await q.consume(collector(got), no_ack=True)
    await q.cancel(tag)
    await publish(q.name, b"after-cancel")
    await asyncio.sleep(0.3)
    check(not got, "delivery after cancel")
    check(await eventually(lambda: _eq(count(q.name), 1)), "message not left in the queue")
    await q.delete(if_unused=False, if_empty=False)


async def transactions():
    q = await queue()
    ch = await chan(publisher_confirms=False)
    tx = ch.transaction()
    await tx.select()
    await ch.default_exchange.publish(Message(b"rolled-back"), routing_key=q.name)
    await tx.rollback()
    check(await eventually(lambda: _eq(count(q.name), 0)), "rolled-back publish delivered")
    await ch.default_exchange.publish(Message(b"committed"), routing_key=q.name)
    check(await eventually(lambda: _eq(count(q.name), 0)), "uncommitted publish visible")
    await tx.commit()
    check(await eventually(lambda: _eq(count(q.name), 1)), "committed publish missing")
    await ch.close()
    await q.delete(if_unused=False, if_empty=False)


async def headers_roundtrip():
    q = await queue()
    await publish(q.name, b"h", headers=NESTED_HEADERS, content_type="text/plain", priority=3,
                  correlation_id="cid", message_id="mid", type="t", app_id="aiopika",
                  expiration=60, reply_to="rq", delivery_mode=DeliveryMode.PERSISTENT)
    msg = await q.get(no_ack=True)
    check(msg.headers == NESTED_HEADERS, f"headers {msg.headers}")
    for attr, want in [("content_type", "text/plain"), ("priority", 3),
                       ("correlation_id", "cid"), ("message_id", "mid"), ("type", "t"),
                       ("app_id", "aiopika"), ("reply_to", "rq"),
                       ("delivery_mode", DeliveryMode.PERSISTENT)]:
        check(getattr(msg, attr) == want, f"{attr}={getattr(msg, attr)!r}")
    await q.delete(if_unused=False, if_empty=False)


async def large_message():
    q = await queue()
    body = bytes(range(256)) * 4096 + b"end"  # 1 MiB + 3: many body frames
    await publish(q.name, body)
    msg = await q.get(no_ack=True)
    check(msg.body == body, f"body of {len(msg.body)} bytes differs")
    await q.delete(if_unused=False, if_empty=False)


async def dead_letter_x_death():
    ch = await main_channel()
    ex = await ch.declare_exchange(unique("aiopika-dl-src"), ExchangeType.DIRECT)
    dlx = await ch.declare_exchange(unique("aiopika-dlx"), ExchangeType.FANOUT)
    work = await queue(arguments={"x-dead-letter-exchange": dlx.name})
    dlq = await queue()
    await work.bind(ex, routing_key="k1")
    await work.bind(ex, routing_key="k2")
    await dlq.bind(dlx)
    await ex.publish(Message(b"dl", expiration=60, headers={"CC": ["k2"], "app": "x"}),
                     routing_key="k1")
    msg = await work.get(timeout=5)
    await msg.reject(requeue=False)
    check(await eventually(lambda: _eq(count(dlq.name), 1)), "nothing dead-lettered")
    msg = await dlq.get(no_ack=True)
    check(msg.body == b"dl" and msg.exchange == dlx.name and msg.routing_key == "k1",
          f"{msg.exchange} {msg.routing_key} {msg.body!r}")
    check(msg.expiration is None, f"expiration {msg.expiration!r} kept")
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
    check(abs(d["time"].timestamp() - time.time()) < 300, f"time {d['time']}")

    dlx2 = await ch.declare_exchange(unique("aiopika-dlx-direct"), ExchangeType.DIRECT)
    work2 = await queue(arguments={"x-dead-letter-exchange": dlx2.name,
                                   "x-dead-letter-routing-key": "dead"})
    dlq2 = await queue()
    await work2.bind(ex, routing_key="k3")
    await dlq2.bind(dlx2, routing_key="dead")
    await ex.publish(Message(b"dl2", headers={"CC": ["k4"]}), routing_key="k3")
    msg = await work2.get(timeout=5)
    await msg.nack(requeue=False)
    check(await eventually(lambda: _eq(count(dlq2.name), 1)), "nothing dead-lettered (DLRK)")
    msg = await dlq2.get(no_ack=True)
    check(msg.routing_key == "dead" and "CC" not in msg.headers, f"{msg.routing_key} {msg.headers}")
    d = msg.headers["x-death"][0]
    check(d["routing-keys"] == ["k3", "k4"] and "original-expiration" not in d, f"{d}")
    for q in (work, dlq, work2, dlq2):
        await q.delete(if_unused=False, if_empty=False)
    for x in (ex, dlx, dlx2):
        await x.delete()


async def dead_letter_ttl_retry_loop():
    ch = await main_channel()
    work_name, retry_name = unique("aiopika-work"), unique("aiopika-retry")
    work = await ch.declare_queue(work_name, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": retry_name})
    retry = await ch.declare_queue(retry_name, arguments={
        "x-message-ttl": 50, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": work_name})
    await publish(work_name, b"retry")
    for n in range(1, 4):
        msg = None
        for _ in range(500):
            msg = await work.get(fail=False)
            if msg is not None:
                break
            await asyncio.sleep(0.02)
        check(msg is not None, f"round {n}: message did not come back")
        deaths = (msg.headers or {}).get("x-death", [])
        want = [] if n == 1 else [(retry_name, "expired", n - 1), (work_name, "rejected", n - 1)]
        check([(d["queue"], d["reason"], d["count"]) for d in deaths] == want,
              f"round {n}: {deaths}")
        check(all(type(d["count"]) is int for d in deaths), f"{deaths}")
        await msg.reject(requeue=False)
    await work.delete(if_unused=False, if_empty=False)
    await retry.delete(if_unused=False, if_empty=False)


async def max_length_reject_publish():
    ch = await chan(publisher_confirms=True)
    q = await ch.declare_queue(unique("aiopika-maxlen"),
                               arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    outcomes = []
    for body in (b"m1", b"m2", b"m3"):
        try:
            confirm = await ch.default_exchange.publish(Message(body), routing_key=q.name)
            outcomes.append(type(confirm).__name__)
        except aio_pika.exceptions.DeliveryError as e:
            outcomes.append(type(e.frame).__name__)
    check(outcomes == ["Ack", "Ack", "Nack"], f"confirms {outcomes}")
    check(await count(q.name) == 2, "count")
    await q.delete(if_unused=False, if_empty=False)
    await ch.close()
    q2 = await queue(arguments={"x-max-length": 2, "x-overflow": "drop-head"})
    for i in (1, 2, 3):
        await publish(q2.name, b"d%d" % i)
    check(await eventually(lambda: _eq(count(q2.name), 2)), "count after drop-head")
    bodies = [(await q2.get(no_ack=True)).body for _ in range(2)]
    check(bodies == [b"d2", b"d3"], f"{bodies}")
    await q2.delete(if_unused=False, if_empty=False)


async def priority_order():
    q = await queue(arguments={"x-max-priority": 10})
    sent = [(b"p1", 1), (b"p5a", 5), (b"p9", 9), (b"p0", 0), (b"p5b", 5), (b"p200", 200),
            (b"none", None)]
    for body, prio in sent:
        await publish(q.name, body, priority=prio)
    check(await eventually(lambda: _eq(count(q.name), len(sent))), "count")
    got = []
    async with q.iterator() as it:
        async for msg in it:
            got.append((msg.body, msg.priority))
            await msg.ack()
            if len(got) == len(sent):
                break
    # Above x-max-priority counts as the max; FIFO within one priority; aio-pika sends
    # priority 0 when none is given.
    check(got == [(b"p200", 200), (b"p9", 9), (b"p5a", 5), (b"p5b", 5), (b"p1", 1),
                  (b"p0", 0), (b"none", 0)], f"order {got}")
    await q.delete(if_unused=False, if_empty=False)


async def rpc_pattern():
    ch = await chan()
    rpc = await aio_pika.patterns.RPC.create(ch)
    name = unique("aiopika-rpc")

    async def multiply(*, x, y):
        return x * y

    await rpc.register(name, multiply, auto_delete=True)
    check(await rpc.call(name, kwargs={"x": 6, "y": 7}) == 42, "rpc result")
    results = await asyncio.gather(*[rpc.call(name, kwargs={"x": i, "y": 2}) for i in range(10)])
    check(results == [i * 2 for i in range(10)], f"{results}")
    await rpc.close()
    await ch.close()


async def json_rpc_pattern():
    ch = await chan()
    rpc = await aio_pika.patterns.JsonRPC.create(ch)
    name = unique("aiopika-jsonrpc")

    async def echo(*, payload):
        return {"echo": payload, "n": len(payload)}

    await rpc.register(name, echo, auto_delete=True)
    got = await rpc.call(name, kwargs={"payload": ["a", 1, {"b": None}]})
    check(got == {"echo": ["a", 1, {"b": None}], "n": 3}, f"{got}")
    await rpc.close()
    await ch.close()


async def close_cleanly():
    await (await main_channel()).close()
    await state["conn"].close()
    check(state["conn"].is_closed, "connection not closed")


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
        ("rpc_pattern", rpc_pattern),
        ("json_rpc_pattern", json_rpc_pattern),
        ("close_cleanly", close_cleanly),
    ])
