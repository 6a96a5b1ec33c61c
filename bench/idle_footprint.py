#!/usr/bin/env python3
"""Idle footprint of a broker: RSS per idle connection (each with one open channel) and
per idle durable queue. Raw AMQP over asyncio, no client library needed.

usage: bench/idle_footprint.py PORT PID [CONNECTIONS] [QUEUES]
Prints the broker's RSS before, with the connections open, and after declaring the
queues, and the per-item figures.
"""
import asyncio, struct, sys, time

def frame(t, ch, payload): return struct.pack('>BHI', t, ch, len(payload)) + payload + b'\xce'
def method(cls, mid, args=b''): return struct.pack('>HH', cls, mid) + args
def sstr(s): return bytes([len(s)]) + s
def lstr(s): return struct.pack('>I', len(s)) + s

async def read_frame(r):
    h = await r.readexactly(7)
    t, ch, n = struct.unpack('>BHI', h)
    p = await r.readexactly(n + 1)
    return t, ch, p[:-1]

async def open_conn(port):
    r, w = await asyncio.open_connection('127.0.0.1', port)
    w.write(b'AMQP\x00\x00\x09\x01')
    await read_frame(r)
    w.write(frame(1, 0, method(10, 11, struct.pack('>I', 0) + sstr(b'PLAIN') + lstr(b'\x00guest\x00guest') + sstr(b'en_US'))))
    await read_frame(r)
    w.write(frame(1, 0, method(10, 31, struct.pack('>HIH', 2047, 131072, 60))))
    w.write(frame(1, 0, method(10, 40, sstr(b'/') + sstr(b'') + b'\x00')))
    await read_frame(r)
    w.write(frame(1, 1, method(20, 10, sstr(b''))))
    await read_frame(r)
    return r, w

def rss_kib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0

async def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n_conn = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    n_queues = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
    # Queues first, on one connection: measured after many connections have closed, RSS
    # would still be falling as the allocator returns their memory, and the figure with it.
    r, w = await open_conn(port)
    await asyncio.sleep(1)
    before_q = rss_kib(pid)
    tag = int(time.time())
    for i in range(n_queues):
        args = b'\x00\x00' + sstr(b'idle-%d-%d' % (tag, i)) + b'\x02' + struct.pack('>I', 0)  # durable
        w.write(frame(1, 1, method(50, 10, args)))
        if i % 100 == 99:
            await w.drain()
    got = 0
    while got < n_queues:
        t, ch, p = await read_frame(r)
        if p[:4] == struct.pack('>HH', 50, 11):
            got += 1
    await asyncio.sleep(2)
    after_q = rss_kib(pid)
    if n_queues:
        print(f"durable queues: {n_queues}, RSS {before_q} KiB -> {after_q} KiB, {(after_q - before_q) / n_queues:.2f} KiB per queue")
    for i in range(n_queues):
        w.write(frame(1, 1, method(50, 40, b'\x00\x00' + sstr(b'idle-%d-%d' % (tag, i)) + b'\x00')))
        if i % 100 == 99:
            await w.drain()
    got = 0
    while got < n_queues:
        t, ch, p = await read_frame(r)
        if p[:4] == struct.pack('>HH', 50, 41):
            got += 1
    w.close()
    await asyncio.sleep(2)
    base = rss_kib(pid)
    conns = []
    sem = asyncio.Semaphore(200)
    async def one():
        async with sem:
            conns.append(await open_conn(port))
    await asyncio.gather(*(one() for _ in range(n_conn)))
    await asyncio.sleep(2)
    with_conns = rss_kib(pid)
    if n_conn:
        print(f"connections: {n_conn}, RSS {base} KiB -> {with_conns} KiB, {(with_conns - base) / n_conn:.1f} KiB per connection")
    for _, cw in conns:
        cw.close()

asyncio.run(main())
