"""kombu's priority support (issue 11): queues declared with kombu's `max_priority` and with
`queue_arguments={'x-max-priority': N}`, messages published with `priority=`; a consumer
must get them highest priority first, FIFO within a priority (above the maximum counts as
the maximum, none as 0). AMQP_URL names the broker. Prints `PASS <case>` per case, exits 1
on a mismatch. Run by integration/tests/priority.rs.
"""

import sys
import time

from kombu import Connection, Consumer, Producer, Queue

from runner import unique, url

MAX = 10
PRIORITIES = [None, 3, 9, 12, 3, 0, 10, None, 1, 9]


def expected(messages):
    # Stable sort: publish order within a priority.
    return [body for body, _ in sorted(messages, key=lambda m: -min(m[1] or 0, MAX))]


def run_case(conn, case, queue):
    ch = conn.channel()
    queue = queue(ch)
    queue.declare()
    producer = Producer(ch)
    messages = [(f"{case}-{i}", PRIORITIES[i % len(PRIORITIES)]) for i in range(40)]
    for body, priority in messages:
        kw = {} if priority is None else {"priority": priority}
        producer.publish(body, routing_key=queue.name, serializer="json", **kw)
    # Wait until all are in (a publish is asynchronous), then consume.
    for _ in range(100):
        if queue.queue_declare(passive=True).message_count >= len(messages):
            break
        time.sleep(0.05)
    got = []

    def on_message(body, message):
        got.append(body)
        message.ack()

    ch.basic_qos(0, 5, False)
    with Consumer(ch, queues=[queue], callbacks=[on_message], accept=["json"]):
        while len(got) < len(messages):
            conn.drain_events(timeout=10)
    queue.delete()
    ch.close()
    if got != expected(messages):
        print(f"FAIL {case}: got {got}, expected {expected(messages)}")
        return False
    print(f"PASS {case}")
    return True


def main():
    with Connection("pyamqp" + url()[len("amqp"):]) as conn:
        conn.connect()
        ok = run_case(
            conn,
            "kombu-max-priority",
            lambda ch: Queue(unique("kombu-prio"), max_priority=MAX, channel=ch),
        )
        ok &= run_case(
            conn,
            "kombu-queue-arguments",
            lambda ch: Queue(
                unique("kombu-prio"), queue_arguments={"x-max-priority": MAX}, channel=ch
            ),
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
