<?php
// Client-compatibility scenarios with php-amqplib. AMQP_URL names the broker.
// One line per scenario; exit 1 on any FAIL.

require_once getenv('PHP_AMQPLIB_AUTOLOAD') ?: '/usr/share/php/PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;

const HEARTBEAT = 2;

class Skip extends Exception {}

$conn = null;
$ch = null;

function unique($prefix) { return $prefix . '-' . bin2hex(random_bytes(6)); }

function check($cond, $msg) { if (!$cond) { throw new RuntimeException($msg); } }

function connect() {
    $u = parse_url(getenv('AMQP_URL') ?: 'amqp://guest:guest@127.0.0.1:5672/%2f');
    $vhost = isset($u['path']) && strlen($u['path']) > 1 ? urldecode(substr($u['path'], 1)) : '/';
    return new AMQPStreamConnection(
        $u['host'], $u['port'] ?? 5672, urldecode($u['user']), urldecode($u['pass']), $vhost,
        false, 'AMQPLAIN', null, 'en_US', 3.0, 2 * HEARTBEAT + 1, null, false, HEARTBEAT
    );
}

function main_ch() {
    global $conn, $ch;
    if ($ch === null || !$ch->is_open()) { $ch = $conn->channel(); }
    return $ch;
}

function queue($durable = false, $exclusive = false, $autoDelete = false) {
    $name = unique('php');
    main_ch()->queue_declare($name, false, $durable, $exclusive, $autoDelete);
    return $name;
}

function count_q($name) {
    [, $messages] = main_ch()->queue_declare($name, true);
    return $messages;
}

function expect_code($code, callable $op) {
    try {
        $op();
    } catch (AMQPProtocolChannelException $e) {
        check($e->getCode() === $code, "reply code {$e->getCode()}, expected $code: {$e->getMessage()}");
        return $e;
    }
    throw new RuntimeException("expected a $code channel error, the operation succeeded");
}

function eventually(callable $f) {
    $deadline = microtime(true) + 5;
    while (microtime(true) < $deadline) {
        if ($f()) { return true; }
        usleep(50000);
    }
    return (bool) $f();
}

function get_wait($c, $q, $noAck = false) {
    for ($i = 0; $i < 100; $i++) {
        $m = $c->basic_get($q, $noAck);
        if ($m !== null) { return $m; }
        usleep(20000);
    }
    return null;
}

/** Process incoming frames on $c for $seconds. */
function pump($c, $seconds) {
    $deadline = microtime(true) + $seconds;
    while (($left = $deadline - microtime(true)) > 0) {
        try { $c->wait(null, false, min($left, 0.2)); } catch (AMQPTimeoutException $e) {}
    }
}

/** Process frames until $got has $want entries (5 s at most), then 300 ms more. */
function settle($c, &$got, $want) {
    $deadline = microtime(true) + 5;
    while (count($got) < $want && microtime(true) < $deadline) {
        try { $c->wait(null, false, 0.05); } catch (AMQPTimeoutException $e) {}
    }
    pump($c, 0.3);
}

function msg($body, $props = []) { return new AMQPMessage($body, $props); }

// ---- scenarios ----

function connect_heartbeat() {
    global $conn;
    $conn = connect();
    check($conn->getHeartbeat() === HEARTBEAT, "negotiated heartbeat {$conn->getHeartbeat()}");
    $c = main_ch();
    $deadline = microtime(true) + HEARTBEAT * 2.5;
    while (microtime(true) < $deadline) {
        $conn->checkHeartBeat(); // sends ours when due
        try { $c->wait(null, false, HEARTBEAT / 4); } catch (AMQPTimeoutException $e) {} // reads the broker's
    }
    check($conn->isConnected(), 'connection lost while idle with heartbeats');
    $q = queue(false, true, false);
    check(count_q($q) === 0, 'round trip after idle period');
}

function exchange_types() {
    $c = main_ch();
    foreach (['direct', 'fanout', 'topic', 'headers'] as $kind) {
        $ex = unique("php-$kind");
        $c->exchange_declare($ex, $kind, false, false, false);
        $q = queue();
        if ($kind === 'headers') {
            $c->queue_bind($q, $ex, '', false, new AMQPTable(['x-match' => 'all', 'k' => 'v']));
        } else {
            $c->queue_bind($q, $ex, 'a.b');
        }
        $c->basic_publish(msg('m', ['application_headers' => new AMQPTable(['k' => 'v'])]), $ex, 'a.b');
        $m = get_wait($c, $q, true);
        check($m !== null && $m->getBody() === 'm', "$kind exchange did not route");
        $c->exchange_delete($ex);
        $c->queue_delete($q);
    }
}

function exchange_to_exchange() {
    $c = main_ch();
    $src = unique('php-src');
    $dst = unique('php-dst');
    $c->exchange_declare($src, 'topic', false, false, false);
    $c->exchange_declare($dst, 'fanout', false, false, false);
    $c->exchange_bind($dst, $src, 'a.#');
    $q = queue();
    $c->queue_bind($q, $dst);
    $c->basic_publish(msg('e2e'), $src, 'a.b.c');
    $c->basic_publish(msg('nope'), $src, 'b.c');
    check(eventually(fn() => count_q($q) === 1), 'expected 1 message via e2e, got ' . count_q($q));
    $c->exchange_unbind($dst, $src, 'a.#');
    $c->exchange_delete($src);
    $c->exchange_delete($dst);
    $c->queue_delete($q);
}

function queue_durable() {
    $q = queue(true);
    main_ch()->queue_declare($q, false, true, false, false);
    expect_code(406, fn() => main_ch()->queue_declare($q, false, false, false, false));
    main_ch()->queue_delete($q);
}

function queue_exclusive() {
    $q = queue(false, true);
    $other = connect();
    try {
        $oc = $other->channel();
        expect_code(405, fn() => $oc->basic_consume($q, '', false, true, false, false, function () {}));
    } finally {
        $other->close();
    }
    main_ch()->queue_delete($q);
}

function queue_auto_delete() {
    $q = queue(false, false, true);
    $c = main_ch();
    $tag = $c->basic_consume($q, '', false, true, false, false, function () {});
    $c->basic_cancel($tag);
    expect_code(404, fn() => $c->queue_declare($q, true));
}

function queue_server_named() {
    [$name] = main_ch()->queue_declare('', false, false, true, true);
    check(strpos($name, 'amq.gen-') === 0, "server-named queue $name");
    main_ch()->queue_delete($name);
}

function passive_missing_404() {
    global $conn;
    $e = expect_code(404, fn() => main_ch()->queue_declare(unique('php-missing'), true));
    check(strpos($e->getMessage(), 'NOT_FOUND') === 0, $e->getMessage());
    check($conn->isConnected(), 'connection closed on a channel error');
    main_ch();
}

function publish_confirms() {
    global $conn;
    $c = $conn->channel();
    $acked = 0;
    $nacked = 0;
    $c->set_ack_handler(function () use (&$acked) { $acked++; });
    $c->set_nack_handler(function () use (&$nacked) { $nacked++; });
    $c->confirm_select();
    $q = unique('php-confirm');
    $c->queue_declare($q, false, true, false, false);
    for ($i = 0; $i < 20; $i++) {
        $c->basic_publish(msg("c$i", ['delivery_mode' => AMQPMessage::DELIVERY_MODE_PERSISTENT]), '', $q);
    }
    $c->wait_for_pending_acks(5);
    check($acked === 20 && $nacked === 0, "acked $acked, nacked $nacked");
    check(eventually(fn() => count_q($q) === 20), 'count ' . count_q($q));
    $c->queue_delete($q);
    $c->close();
}

function mandatory_return() {
    global $conn;
    $c = $conn->channel();
    $returned = [];
    $c->set_return_listener(function ($code, $text, $ex, $key, $m) use (&$returned) {
        $returned[] = [$code, $text, $key, $m->getBody()];
    });
    $c->set_ack_handler(function () {});
    $c->confirm_select();
    $key = unique('php-unroutable');
    $c->basic_publish(msg('ret'), '', $key, true);
    $c->wait_for_pending_acks_returns(5);
    check(count($returned) === 1, count($returned) . ' returns');
    [$code, $text, $rkey, $body] = $returned[0];
    check($code === 312 && $text === 'NO_ROUTE', "$code $text");
    check($rkey === $key && $body === 'ret', "returned $rkey");
    $c->close();
}

function consume_manual_ack() {
    $c = main_ch();
    $q = queue();
    for ($i = 0; $i < 3; $i++) { $c->basic_publish(msg("m$i"), '', $q); }
    $got = [];
    $tag = $c->basic_consume($q, '', false, false, false, false, function ($m) use (&$got) {
        $got[] = $m->getBody();
        $m->ack();
    });
    $deadline = microtime(true) + 5;
    while (count($got) < 3 && microtime(true) < $deadline) {
        try { $c->wait(null, false, 0.2); } catch (AMQPTimeoutException $e) {}
    }
    $c->basic_cancel($tag);
    check($got === ['m0', 'm1', 'm2'], 'got ' . json_encode($got));
    check(count_q($q) === 0, 'acked messages still in queue');
    $c->queue_delete($q);
}

function nack_requeue() {
    $c = main_ch();
    $q = queue();
    $c->basic_publish(msg('n'), '', $q);
    $m = get_wait($c, $q);
    check($m !== null && !$m->isRedelivered(), 'first get');
    $m->nack(true);
    $m = get_wait($c, $q);
    check($m !== null && $m->isRedelivered() && $m->getBody() === 'n', 'not redelivered');
    $m->ack();
    $c->queue_delete($q);
}

function reject_no_requeue() {
    $c = main_ch();
    $q = queue();
    $c->basic_publish(msg('r'), '', $q);
    $m = get_wait($c, $q);
    $m->reject(false);
    check(count_q($q) === 0, 'rejected message still in queue');
    check($c->basic_get($q) === null, 'rejected message delivered again');
    $c->queue_delete($q);
}

function basic_get() {
    $c = main_ch();
    $q = queue();
    check($c->basic_get($q, true) === null, 'get on an empty queue returned a message');
    $c->basic_publish(msg('g1'), '', $q);
    $c->basic_publish(msg('g2'), '', $q);
    check(eventually(fn() => count_q($q) === 2), 'publishes not queued');
    $m = $c->basic_get($q, true);
    check($m->getBody() === 'g1' && $m->getMessageCount() === 1, 'message count ' . $m->getMessageCount());
    $c->queue_delete($q);
}

function prefetch() {
    global $conn;
    $q = queue();
    for ($i = 0; $i < 5; $i++) { main_ch()->basic_publish(msg("p$i"), '', $q); }
    $c = $conn->channel();
    $c->basic_qos(0, 2, false);
    $got = [];
    $c->basic_consume($q, '', false, false, false, false, function ($m) use (&$got) { $got[] = $m; });
    settle($c, $got, 2);
    check(count($got) === 2, count($got) . ' unacked deliveries with prefetch 2');
    $got[0]->ack();
    settle($c, $got, 3);
    check(count($got) === 3, count($got) . ' deliveries after one ack');
    $c->close();
    main_ch()->queue_delete($q);
}

function cancel_consumer() {
    $c = main_ch();
    $q = queue();
    $got = [];
    $tag = $c->basic_consume($q, '', false, true, false, false, function ($m) use (&$got) { $got[] = $m; });
    $c->basic_cancel($tag);
    check(!$c->is_consuming(), 'still consuming after cancel');
    $c->basic_publish(msg('after-cancel'), '', $q);
    usleep(300000);
    check(count($got) === 0, 'delivery after cancel');
    check(eventually(fn() => count_q($q) === 1), 'message not left in the queue');
    $c->queue_delete($q);
}

function transactions() {
    global $conn;
    $q = queue();
    $c = $conn->channel();
    $c->tx_select();
    $c->basic_publish(msg('rolled-back'), '', $q);
    $c->tx_rollback();
    check(count_q($q) === 0, 'rolled-back publish delivered');
    $c->basic_publish(msg('committed'), '', $q);
    check(count_q($q) === 0, 'uncommitted publish visible');
    $c->tx_commit();
    check(eventually(fn() => count_q($q) === 1), 'committed publish missing');
    $m = $c->basic_get($q);
    $m->ack();
    $c->tx_commit();
    check(count_q($q) === 0, 'committed ack did not remove the message');
    $c->close();
    main_ch()->queue_delete($q);
}

function headers_roundtrip() {
    $c = main_ch();
    $q = queue();
    $headers = [
        'str' => 'hello',
        'int' => 42,
        'neg' => -7,
        'bool' => true,
        'table' => ['inner' => 'x', 'num' => 1, 'deeper' => ['leaf' => 'y']],
        'array' => [1, 'two', ['k' => 'v']],
    ];
    $props = [
        'application_headers' => new AMQPTable($headers), 'content_type' => 'text/plain',
        'priority' => 3, 'correlation_id' => 'cid', 'message_id' => 'mid', 'timestamp' => 1700000000,
        'type' => 't', 'app_id' => 'php', 'expiration' => '60000', 'reply_to' => 'rq',
        'delivery_mode' => 2,
    ];
    $c->basic_publish(msg('h', $props), '', $q);
    $m = get_wait($c, $q, true);
    $got = $m->get('application_headers')->getNativeData();
    check($got == $headers, 'headers ' . json_encode($got));
    foreach ($props as $k => $v) {
        if ($k === 'application_headers') { continue; }
        check($m->get($k) == $v, "$k=" . json_encode($m->get($k)));
    }
    $c->queue_delete($q);
}

function large_message() {
    $c = main_ch();
    $q = queue();
    $body = str_repeat('abcdefgh', 1 << 17) . 'end'; // 1 MiB + 3: many body frames
    $c->basic_publish(msg($body), '', $q);
    $m = get_wait($c, $q, true);
    check($m !== null && $m->getBody() === $body, 'body differs');
    $c->queue_delete($q);
}

/** [type, value] pairs of a decoded table or array, in wire order (nested ones stay objects). */
function typed($collection) {
    $out = [];
    foreach ($collection as $k => $tv) { $out[$k] = $tv; }
    return $out;
}

function dead_letter_x_death() {
    $c = main_ch();
    $ex = unique('php-dl-src');
    $dlx = unique('php-dlx');
    $c->exchange_declare($ex, 'direct', false, false, false);
    $c->exchange_declare($dlx, 'fanout', false, false, false);
    $work = unique('php-work');
    $c->queue_declare($work, false, false, false, false, false, new AMQPTable(['x-dead-letter-exchange' => $dlx]));
    $dlq = queue();
    $c->queue_bind($work, $ex, 'k1');
    $c->queue_bind($work, $ex, 'k2');
    $c->queue_bind($dlq, $dlx);
    $c->basic_publish(msg('dl', ['expiration' => '60000',
        'application_headers' => new AMQPTable(['CC' => ['k2'], 'app' => 'x'])]), $ex, 'k1');
    $m = get_wait($c, $work);
    check($m !== null, 'message not routed');
    $m->reject(false);
    $m = get_wait($c, $dlq, true);
    check($m !== null, 'nothing dead-lettered');
    check($m->getBody() === 'dl' && $m->getExchange() === $dlx && $m->getRoutingKey() === 'k1',
        "{$m->getExchange()} {$m->getRoutingKey()}");
    check(!$m->has('expiration'), 'expiration kept: ' . json_encode($m->get_properties()));
    $table = $m->get('application_headers');
    $h = $table->getNativeData();
    check(array_keys($h) === ['CC', 'app', 'x-death', 'x-first-death-exchange', 'x-first-death-queue',
        'x-first-death-reason'], 'header keys ' . json_encode(array_keys($h)));
    check($h['CC'] === ['k2'] && $h['app'] === 'x', 'headers ' . json_encode($h));
    check($h['x-first-death-reason'] === 'rejected' && $h['x-first-death-queue'] === $work
        && $h['x-first-death-exchange'] === $ex, 'x-first-death-* ' . json_encode($h));
    check(count($h['x-death']) === 1, 'x-death ' . json_encode($h['x-death']));
    $d = $h['x-death'][0];
    check(array_keys($d) === ['count', 'reason', 'queue', 'time', 'exchange', 'routing-keys',
        'original-expiration'], 'x-death keys ' . json_encode(array_keys($d)));
    check($d['count'] === 1 && $d['reason'] === 'rejected' && $d['queue'] === $work && $d['exchange'] === $ex,
        'x-death ' . json_encode($d));
    check($d['routing-keys'] === ['k1', 'k2'], 'routing-keys ' . json_encode($d['routing-keys']));
    check($d['original-expiration'] === '60000', 'original-expiration ' . json_encode($d));
    check($d['time'] instanceof DateTime && abs($d['time']->getTimestamp() - time()) < 300,
        'time ' . json_encode($d['time']));
    // The wire types: count a signed 64-bit long, time a timestamp.
    $death = typed(typed(typed($table)['x-death'][1])[0][1]);
    check($death['count'][0] === AMQPTable::T_INT_LONGLONG, 'count type ' . $death['count'][0]);
    check($death['time'][0] === AMQPTable::T_TIMESTAMP, 'time type ' . $death['time'][0]);

    $dlx2 = unique('php-dlx-direct');
    $c->exchange_declare($dlx2, 'direct', false, false, false);
    $work2 = unique('php-work');
    $c->queue_declare($work2, false, false, false, false, false, new AMQPTable(
        ['x-dead-letter-exchange' => $dlx2, 'x-dead-letter-routing-key' => 'dead']));
    $dlq2 = queue();
    $c->queue_bind($work2, $ex, 'k3');
    $c->queue_bind($dlq2, $dlx2, 'dead');
    $c->basic_publish(msg('dl2', ['application_headers' => new AMQPTable(['CC' => ['k4']])]), $ex, 'k3');
    $m = get_wait($c, $work2);
    check($m !== null, 'message not routed (DLRK)');
    $m->nack(false);
    $m = get_wait($c, $dlq2, true);
    check($m !== null, 'nothing dead-lettered (DLRK)');
    $h = $m->get('application_headers')->getNativeData();
    check($m->getRoutingKey() === 'dead' && !isset($h['CC']), $m->getRoutingKey() . ' ' . json_encode($h));
    $d = $h['x-death'][0];
    check($d['routing-keys'] === ['k3', 'k4'] && !isset($d['original-expiration']), 'x-death ' . json_encode($d));
    foreach ([$work, $dlq, $work2, $dlq2] as $q) { $c->queue_delete($q); }
    foreach ([$ex, $dlx, $dlx2] as $x) { $c->exchange_delete($x); }
}

function dead_letter_ttl_retry_loop() {
    $c = main_ch();
    $work = unique('php-work');
    $retry = unique('php-retry');
    $c->queue_declare($work, false, false, false, false, false, new AMQPTable(
        ['x-dead-letter-exchange' => '', 'x-dead-letter-routing-key' => $retry]));
    $c->queue_declare($retry, false, false, false, false, false, new AMQPTable(
        ['x-message-ttl' => 50, 'x-dead-letter-exchange' => '', 'x-dead-letter-routing-key' => $work]));
    $c->basic_publish(msg('retry'), '', $work);
    for ($n = 1; $n <= 3; $n++) {
        $m = null;
        $deadline = microtime(true) + 10;
        while ($m === null && microtime(true) < $deadline) { $m = get_wait($c, $work); }
        check($m !== null, "round $n: message did not come back");
        $h = $m->has('application_headers') ? $m->get('application_headers')->getNativeData() : [];
        $got = array_map(fn($d) => [$d['queue'], $d['reason'], $d['count']], $h['x-death'] ?? []);
        $want = $n === 1 ? [] : [[$retry, 'expired', $n - 1], [$work, 'rejected', $n - 1]];
        check($got === $want, "round $n: x-death " . json_encode($got));
        $m->reject(false);
    }
    $c->queue_delete($work);
    $c->queue_delete($retry);
}

function max_length_reject_publish() {
    global $conn;
    $c = $conn->channel();
    $outcomes = [];
    $c->set_ack_handler(function ($m) use (&$outcomes) { $outcomes[$m->getBody()] = 'ack'; });
    $c->set_nack_handler(function ($m) use (&$outcomes) { $outcomes[$m->getBody()] = 'nack'; });
    $c->confirm_select();
    $q = unique('php-maxlen');
    $c->queue_declare($q, false, false, false, false, false, new AMQPTable(
        ['x-max-length' => 2, 'x-overflow' => 'reject-publish']));
    foreach (['m1', 'm2', 'm3'] as $body) {
        $c->basic_publish(msg($body), '', $q);
        $c->wait_for_pending_acks(5);
    }
    check($outcomes === ['m1' => 'ack', 'm2' => 'ack', 'm3' => 'nack'], 'confirms ' . json_encode($outcomes));
    check(count_q($q) === 2, 'count ' . count_q($q));
    $c->queue_delete($q);
    $c->close();
    $m = main_ch();
    $q2 = unique('php-drophead');
    $m->queue_declare($q2, false, false, false, false, false, new AMQPTable(
        ['x-max-length' => 2, 'x-overflow' => 'drop-head']));
    foreach (['d1', 'd2', 'd3'] as $body) { $m->basic_publish(msg($body), '', $q2); }
    check(eventually(fn() => count_q($q2) === 2), 'count ' . count_q($q2));
    $got = [get_wait($m, $q2, true)->getBody(), get_wait($m, $q2, true)->getBody()];
    check($got === ['d2', 'd3'], 'got ' . json_encode($got));
    $m->queue_delete($q2);
}

function priority_order() {
    $c = main_ch();
    $q = unique('php-prio');
    $c->queue_declare($q, false, false, false, false, false, new AMQPTable(['x-max-priority' => 10]));
    $sent = [['p1', 1], ['p5a', 5], ['p9', 9], ['p0', 0], ['p5b', 5], ['p200', 200], ['none', null]];
    foreach ($sent as [$body, $priority]) {
        $c->basic_publish(msg($body, $priority === null ? [] : ['priority' => $priority]), '', $q);
    }
    check(eventually(fn() => count_q($q) === count($sent)), 'count ' . count_q($q));
    $got = [];
    $tag = $c->basic_consume($q, '', false, false, false, false, function ($m) use (&$got) {
        $got[] = [$m->getBody(), $m->has('priority') ? $m->get('priority') : null];
        $m->ack();
    });
    settle($c, $got, count($sent));
    $c->basic_cancel($tag);
    // Above x-max-priority counts as the max; no priority counts as 0; FIFO within one.
    $want = [['p200', 200], ['p9', 9], ['p5a', 5], ['p5b', 5], ['p1', 1], ['p0', 0], ['none', null]];
    check($got === $want, 'order ' . json_encode($got));
    $c->queue_delete($q);
}

function close_cleanly() {
    global $conn;
    main_ch()->close();
    $conn->close();
    check(!$conn->isConnected(), 'connection not closed');
}

$scenarios = [
    'connect_heartbeat' => 'connect_heartbeat',
    'exchange_types' => 'exchange_types',
    'exchange_to_exchange_binding' => 'exchange_to_exchange',
    'queue_durable' => 'queue_durable',
    'queue_exclusive' => 'queue_exclusive',
    'queue_auto_delete' => 'queue_auto_delete',
    'queue_server_named' => 'queue_server_named',
    'passive_declare_missing_404' => 'passive_missing_404',
    'publish_confirms' => 'publish_confirms',
    'mandatory_unroutable_return' => 'mandatory_return',
    'consume_manual_ack' => 'consume_manual_ack',
    'nack_requeue_redelivered' => 'nack_requeue',
    'reject_without_requeue' => 'reject_no_requeue',
    'basic_get_empty_and_nonempty' => 'basic_get',
    'prefetch_honoured' => 'prefetch',
    'cancel_consumer' => 'cancel_consumer',
    'tx_commit_rollback' => 'transactions',
    'headers_nested_roundtrip' => 'headers_roundtrip',
    'large_message_roundtrip' => 'large_message',
    'dead_letter_x_death' => 'dead_letter_x_death',
    'dead_letter_ttl_retry_loop' => 'dead_letter_ttl_retry_loop',
    'max_length_reject_publish' => 'max_length_reject_publish',
    'priority_order' => 'priority_order',
    'close_cleanly' => 'close_cleanly',
];
$failed = 0;
foreach ($scenarios as $name => $fn) {
    try {
        $fn();
        echo "PASS $name\n";
    } catch (Skip $s) {
        echo "SKIP $name: {$s->getMessage()} (API lacks it)\n";
    } catch (Throwable $e) {
        $failed++;
        echo "FAIL $name: " . get_class($e) . ': ' . str_replace("\n", ' ', $e->getMessage()) . "\n";
        if (getenv('CLIENT_DEBUG')) { fwrite(STDERR, $e->getTraceAsString() . "\n"); }
    }
}
exit($failed ? 1 : 0);
