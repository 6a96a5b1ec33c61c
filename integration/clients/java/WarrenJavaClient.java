// Client-compatibility scenarios with the RabbitMQ Java client (com.rabbitmq:amqp-client).
// AMQP_URL names the broker. One line per scenario; exit 1 on any FAIL.

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.BuiltinExchangeType;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.LongString;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Date;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

public class WarrenJavaClient {
    static final int HEARTBEAT = 2;

    interface Scenario {
        void run() throws Exception;
    }

    static class Skip extends Exception {
        Skip(String why) {
            super(why);
        }
    }

    static Connection conn;
    static Channel ch;

    static String url() {
        String u = System.getenv("AMQP_URL");
        return u != null ? u : "amqp://guest:guest@127.0.0.1:5672/%2f";
    }

    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 12);
    }

    static void check(boolean cond, String msg) {
        if (!cond) throw new AssertionError(msg);
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] body) {
        return new String(body, StandardCharsets.UTF_8);
    }

    static Connection connect() throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(url());
        f.setRequestedHeartbeat(HEARTBEAT);
        f.setAutomaticRecoveryEnabled(false);
        return f.newConnection();
    }

    static Channel main() throws IOException {
        if (ch == null || !ch.isOpen()) ch = conn.createChannel();
        return ch;
    }

    static String queue(boolean durable, boolean exclusive, boolean autoDelete) throws IOException {
        String name = unique("java");
        main().queueDeclare(name, durable, exclusive, autoDelete, null);
        return name;
    }

    static int count(String q) throws IOException {
        return main().queueDeclarePassive(q).getMessageCount();
    }

    /** The reply code of the channel close that `e` (from a synchronous call) carries. */
    static int replyCode(IOException e) {
        Throwable cause = e.getCause();
        if (cause instanceof ShutdownSignalException) {
            Object reason = ((ShutdownSignalException) cause).getReason();
            if (reason instanceof AMQP.Channel.Close) return ((AMQP.Channel.Close) reason).getReplyCode();
            if (reason instanceof AMQP.Connection.Close) return -((AMQP.Connection.Close) reason).getReplyCode();
        }
        return 0;
    }

    static void expectCode(int code, Scenario op) throws Exception {
        try {
            op.run();
        } catch (IOException e) {
            int got = replyCode(e);
            check(got == code, "reply code " + got + ", expected " + code + ": " + e.getCause());
            return;
        }
        throw new AssertionError("expected a " + code + " channel error, the operation succeeded");
    }

    static boolean eventually(java.util.function.BooleanSupplier f) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (System.nanoTime() < deadline) {
            if (f.getAsBoolean()) return true;
            Thread.sleep(50);
        }
        return f.getAsBoolean();
    }

    static int countQuietly(String q) {
        try {
            return count(q);
        } catch (IOException e) {
            return -1;
        }
    }

    /** Collects deliveries of a consumer. */
    static class Collector extends DefaultConsumer {
        final BlockingQueue<Object[]> got = new LinkedBlockingQueue<>();

        Collector(Channel c) {
            super(c);
        }

        @Override
        public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body) {
            got.add(new Object[] {env, props, body});
        }
    }

    // ---- scenarios ----

    static void connectHeartbeat() throws Exception {
        conn = connect();
        check(conn.getHeartbeat() == HEARTBEAT, "negotiated heartbeat " + conn.getHeartbeat());
        Thread.sleep(HEARTBEAT * 2500L);
        check(conn.isOpen(), "connection closed while idle with heartbeats");
        String q = queue(false, true, false);
        check(count(q) == 0, "round trip after idle period");
    }

    static void exchangeTypes() throws Exception {
        Channel c = main();
        for (BuiltinExchangeType kind : BuiltinExchangeType.values()) {
            String ex = unique("java-" + kind.getType());
            c.exchangeDeclare(ex, kind);
            String q = queue(false, false, false);
            Map<String, Object> args = null;
            if (kind == BuiltinExchangeType.HEADERS) {
                args = new HashMap<>();
                args.put("x-match", "all");
                args.put("k", "v");
            }
            c.queueBind(q, ex, kind == BuiltinExchangeType.HEADERS ? "" : "a.b", args);
            Map<String, Object> headers = Collections.singletonMap("k", "v");
            c.basicPublish(ex, "a.b", new AMQP.BasicProperties.Builder().headers(headers).build(), b("m"));
            GetResponse r = null;
            for (int i = 0; i < 100 && r == null; i++) {
                r = c.basicGet(q, true);
                if (r == null) Thread.sleep(20);
            }
            check(r != null && s(r.getBody()).equals("m"), kind + " exchange did not route");
            c.exchangeDelete(ex);
            c.queueDelete(q);
        }
    }

    static void exchangeToExchange() throws Exception {
        Channel c = main();
        String src = unique("java-src"), dst = unique("java-dst");
        c.exchangeDeclare(src, BuiltinExchangeType.TOPIC);
        c.exchangeDeclare(dst, BuiltinExchangeType.FANOUT);
        c.exchangeBind(dst, src, "a.#");
        String q = queue(false, false, false);
        c.queueBind(q, dst, "");
        c.basicPublish(src, "a.b.c", null, b("e2e"));
        c.basicPublish(src, "b.c", null, b("nope"));
        check(eventually(() -> countQuietly(q) == 1), "expected 1 message via e2e, got " + count(q));
        c.exchangeUnbind(dst, src, "a.#");
        c.exchangeDelete(src);
        c.exchangeDelete(dst);
        c.queueDelete(q);
    }

    static void queueDurable() throws Exception {
        String q = queue(true, false, false);
        main().queueDeclare(q, true, false, false, null);
        expectCode(406, () -> main().queueDeclare(q, false, false, false, null));
        main().queueDelete(q);
    }

    static void queueExclusive() throws Exception {
        String q = queue(false, true, false);
        Connection other = connect();
        try {
            Channel oc = other.createChannel();
            expectCode(405, () -> oc.basicConsume(q, true, new DefaultConsumer(oc)));
        } finally {
            other.close();
        }
        main().queueDelete(q);
    }

    static void queueAutoDelete() throws Exception {
        String q = queue(false, false, true);
        String tag = main().basicConsume(q, true, new DefaultConsumer(main()));
        main().basicCancel(tag);
        expectCode(404, () -> main().queueDeclarePassive(q));
    }

    static void queueServerNamed() throws Exception {
        String name = main().queueDeclare().getQueue();
        check(name.startsWith("amq.gen-"), "server-named queue " + name);
        main().queueDelete(name);
    }

    static void passiveMissing404() throws Exception {
        try {
            main().queueDeclarePassive(unique("java-missing"));
            throw new AssertionError("passive declare of a missing queue succeeded");
        } catch (IOException e) {
            check(replyCode(e) == 404, "reply code " + replyCode(e));
            String text = ((AMQP.Channel.Close) ((ShutdownSignalException) e.getCause()).getReason()).getReplyText();
            check(text.startsWith("NOT_FOUND"), text);
        }
        check(conn.isOpen(), "connection closed on a channel error");
        main();
    }

    static void publishConfirms() throws Exception {
        Channel c = conn.createChannel();
        c.confirmSelect();
        String q = unique("java-confirm");
        c.queueDeclare(q, true, false, false, null);
        for (int i = 0; i < 20; i++) {
            c.basicPublish("", q, new AMQP.BasicProperties.Builder().deliveryMode(2).build(), b("c" + i));
        }
        c.waitForConfirmsOrDie(5000);
        check(eventually(() -> countQuietly(q) == 20), "count " + count(q));
        c.queueDelete(q);
        c.close();
    }

    static void mandatoryReturn() throws Exception {
        Channel c = conn.createChannel();
        CompletableFuture<Object[]> returned = new CompletableFuture<>();
        c.addReturnListener((code, text, ex, key, props, body) ->
                returned.complete(new Object[] {code, text, key, body}));
        String key = unique("java-unroutable");
        c.confirmSelect();
        c.basicPublish("", key, true, null, b("ret"));
        c.waitForConfirmsOrDie(5000);
        Object[] r = returned.get(5, TimeUnit.SECONDS);
        check((Integer) r[0] == 312 && r[1].equals("NO_ROUTE"), r[0] + " " + r[1]);
        check(r[2].equals(key) && s((byte[]) r[3]).equals("ret"), "returned " + r[2]);
        c.close();
    }

    static void consumeManualAck() throws Exception {
        Channel c = main();
        String q = queue(false, false, false);
        for (int i = 0; i < 3; i++) c.basicPublish("", q, null, b("m" + i));
        Collector col = new Collector(c);
        String tag = c.basicConsume(q, false, col);
        List<String> got = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Object[] d = col.got.poll(5, TimeUnit.SECONDS);
            check(d != null, "timed out waiting for deliveries, got " + got);
            got.add(s((byte[]) d[2]));
            c.basicAck(((Envelope) d[0]).getDeliveryTag(), false);
        }
        c.basicCancel(tag);
        check(got.equals(Arrays.asList("m0", "m1", "m2")), "got " + got);
        check(count(q) == 0, "acked messages still in queue");
        c.queueDelete(q);
    }

    static GetResponse getWait(Channel c, String q, boolean autoAck) throws Exception {
        for (int i = 0; i < 100; i++) {
            GetResponse r = c.basicGet(q, autoAck);
            if (r != null) return r;
            Thread.sleep(20);
        }
        return null;
    }

    static void nackRequeue() throws Exception {
        Channel c = main();
        String q = queue(false, false, false);
        c.basicPublish("", q, null, b("n"));
        GetResponse r = getWait(c, q, false);
        check(r != null && !r.getEnvelope().isRedeliver(), "first get");
        c.basicNack(r.getEnvelope().getDeliveryTag(), false, true);
        r = getWait(c, q, false);
        check(r != null && r.getEnvelope().isRedeliver() && s(r.getBody()).equals("n"), "not redelivered");
        c.basicAck(r.getEnvelope().getDeliveryTag(), false);
        c.queueDelete(q);
    }

    static void rejectNoRequeue() throws Exception {
        Channel c = main();
        String q = queue(false, false, false);
        c.basicPublish("", q, null, b("r"));
        GetResponse r = getWait(c, q, false);
        c.basicReject(r.getEnvelope().getDeliveryTag(), false);
        check(count(q) == 0, "rejected message still in queue");
        check(c.basicGet(q, false) == null, "rejected message delivered again");
        c.queueDelete(q);
    }

    static void basicGet() throws Exception {
        Channel c = main();
        String q = queue(false, false, false);
        check(c.basicGet(q, true) == null, "get on an empty queue returned a message");
        c.basicPublish("", q, null, b("g1"));
        c.basicPublish("", q, null, b("g2"));
        check(eventually(() -> countQuietly(q) == 2), "publishes not queued");
        GetResponse r = c.basicGet(q, true);
        check(s(r.getBody()).equals("g1") && r.getMessageCount() == 1, "message count " + r.getMessageCount());
        c.queueDelete(q);
    }

    /** Wait until `items` has `want` entries (5 s at most), then 300 ms more. */
    static void settle(java.util.Collection<?> items, int want) throws InterruptedException {
        for (int i = 0; i < 100 && items.size() < want; i++) Thread.sleep(50);
        Thread.sleep(300);
    }

    static void prefetch() throws Exception {
        String q = queue(false, false, false);
        for (int i = 0; i < 5; i++) main().basicPublish("", q, null, b("p" + i));
        Channel c = conn.createChannel();
        c.basicQos(2);
        Collector col = new Collector(c);
        c.basicConsume(q, false, col);
        settle(col.got, 2);
        check(col.got.size() == 2, col.got.size() + " unacked deliveries with prefetch 2");
        c.basicAck(((Envelope) col.got.peek()[0]).getDeliveryTag(), false);
        settle(col.got, 3);
        check(col.got.size() == 3, col.got.size() + " deliveries after one ack");
        c.close();
        main().queueDelete(q);
    }

    static void cancelConsumer() throws Exception {
        Channel c = main();
        String q = queue(false, false, false);
        Collector col = new Collector(c);
        CompletableFuture<String> cancelOk = new CompletableFuture<>();
        String tag = c.basicConsume(q, true, new DefaultConsumer(c) {
            @Override
            public void handleDelivery(String t, Envelope e, AMQP.BasicProperties p, byte[] body) {
                col.got.add(new Object[] {e, p, body});
            }

            @Override
            public void handleCancelOk(String t) {
                cancelOk.complete(t);
            }
        });
        c.basicCancel(tag);
        check(cancelOk.get(5, TimeUnit.SECONDS).equals(tag), "cancel-ok tag");
        c.basicPublish("", q, null, b("after-cancel"));
        Thread.sleep(300);
        check(col.got.isEmpty(), "delivery after cancel");
        check(eventually(() -> countQuietly(q) == 1), "message not left in the queue");
        c.queueDelete(q);
    }

    static void transactions() throws Exception {
        String q = queue(false, false, false);
        Channel c = conn.createChannel();
        c.txSelect();
        c.basicPublish("", q, null, b("rolled-back"));
        c.txRollback();
        check(count(q) == 0, "rolled-back publish delivered");
        c.basicPublish("", q, null, b("committed"));
        check(count(q) == 0, "uncommitted publish visible");
        c.txCommit();
        check(eventually(() -> countQuietly(q) == 1), "committed publish missing");
        GetResponse r = c.basicGet(q, false);
        c.basicAck(r.getEnvelope().getDeliveryTag(), false);
        c.txCommit();
        check(count(q) == 0, "committed ack did not remove the message");
        c.close();
        main().queueDelete(q);
    }

    /** LongString -> String, recursively, so decoded tables compare with what was sent. */
    static Object plain(Object v) {
        if (v instanceof LongString) return v.toString();
        if (v instanceof Map) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) out.put(e.getKey().toString(), plain(e.getValue()));
            return out;
        }
        if (v instanceof List) {
            List<Object> out = new ArrayList<>();
            for (Object o : (List<?>) v) out.add(plain(o));
            return out;
        }
        return v;
    }

    static void headersRoundtrip() throws Exception {
        Channel c = main();
        String q = queue(false, false, false);
        Map<String, Object> deeper = new HashMap<>();
        deeper.put("leaf", "y");
        Map<String, Object> table = new HashMap<>();
        table.put("inner", "x");
        table.put("num", 1);
        table.put("deeper", deeper);
        Map<String, Object> headers = new HashMap<>();
        headers.put("str", "hello");
        headers.put("int", 42);
        headers.put("neg", -7);
        headers.put("bool", true);
        headers.put("table", table);
        headers.put("array", Arrays.asList(1, "two", Collections.singletonMap("k", "v")));
        Date ts = new Date(1700000000L * 1000);
        AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                .headers(headers).contentType("text/plain").priority(3).correlationId("cid")
                .messageId("mid").timestamp(ts).type("t").appId("java").expiration("60000")
                .replyTo("rq").deliveryMode(2).build();
        c.basicPublish("", q, props, b("h"));
        GetResponse r = getWait(c, q, true);
        AMQP.BasicProperties p = r.getProps();
        check(plain(p.getHeaders()).equals(plain(headers)), "headers " + plain(p.getHeaders()));
        check("text/plain".equals(p.getContentType()) && p.getPriority() == 3
                && "cid".equals(p.getCorrelationId()) && "mid".equals(p.getMessageId())
                && ts.equals(p.getTimestamp()) && "t".equals(p.getType()) && "java".equals(p.getAppId())
                && "60000".equals(p.getExpiration()) && "rq".equals(p.getReplyTo())
                && p.getDeliveryMode() == 2, "properties " + p);
        c.queueDelete(q);
    }

    static void largeMessage() throws Exception {
        Channel c = main();
        String q = queue(false, false, false);
        byte[] body = new byte[(1 << 20) + 3]; // many body frames
        for (int i = 0; i < body.length; i++) body[i] = (byte) i;
        c.basicPublish("", q, null, body);
        GetResponse r = getWait(c, q, true);
        check(r != null && Arrays.equals(r.getBody(), body), "body differs");
        c.queueDelete(q);
    }

    static GetResponse getOne(Channel c, String q, boolean autoAck) throws Exception {
        GetResponse[] got = new GetResponse[1];
        eventually(() -> {
            try {
                got[0] = c.basicGet(q, autoAck);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
            return got[0] != null;
        });
        check(got[0] != null, "no message in " + q);
        return got[0];
    }

    /** A header value as a String: the client hands longstr fields over as LongString. */
    static String str(Object v) {
        check(v instanceof LongString, "not a longstr: " + v + " (" + (v == null ? null : v.getClass()) + ")");
        return v.toString();
    }

    static List<String> strs(Object v) {
        check(v instanceof List, "not an array: " + v);
        List<String> out = new ArrayList<>();
        for (Object o : (List<?>) v) out.add(str(o));
        return out;
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> deaths(Map<String, Object> headers) {
        Object v = headers == null ? null : headers.get("x-death");
        if (v == null) return Collections.emptyList();
        check(v instanceof List, "x-death is not an array: " + v);
        return (List<Map<String, Object>>) v;
    }

    static void deadLetterXDeath() throws Exception {
        Channel c = main();
        String ex = unique("java-dl-src"), dlx = unique("java-dlx");
        c.exchangeDeclare(ex, BuiltinExchangeType.DIRECT);
        c.exchangeDeclare(dlx, BuiltinExchangeType.FANOUT);
        String work = unique("java-work"), dlq = unique("java-dlq");
        c.queueDeclare(work, false, false, false, Map.of("x-dead-letter-exchange", dlx));
        c.queueDeclare(dlq, false, false, false, null);
        c.queueBind(work, ex, "k1");
        c.queueBind(work, ex, "k2");
        c.queueBind(dlq, dlx, "");
        Map<String, Object> headers = new HashMap<>();
        headers.put("CC", Arrays.asList("k2"));
        headers.put("app", "x");
        c.basicPublish(ex, "k1", new AMQP.BasicProperties.Builder()
                .expiration("60000").headers(headers).build(), b("dl"));
        c.basicReject(getOne(c, work, false).getEnvelope().getDeliveryTag(), false);
        GetResponse r = getOne(c, dlq, true);
        check(s(r.getBody()).equals("dl"), "body");
        check(r.getEnvelope().getExchange().equals(dlx) && r.getEnvelope().getRoutingKey().equals("k1"),
                "envelope " + r.getEnvelope());
        check(r.getProps().getExpiration() == null, "expiration " + r.getProps().getExpiration());
        Map<String, Object> h = r.getProps().getHeaders();
        check(h.keySet().equals(new java.util.HashSet<>(Arrays.asList("CC", "app", "x-death",
                "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason"))), "headers " + h);
        check(strs(h.get("CC")).equals(Arrays.asList("k2")) && str(h.get("app")).equals("x"), "headers " + h);
        check(str(h.get("x-first-death-reason")).equals("rejected")
                && str(h.get("x-first-death-queue")).equals(work)
                && str(h.get("x-first-death-exchange")).equals(ex), "x-first-death-* " + h);
        List<Map<String, Object>> ds = deaths(h);
        check(ds.size() == 1, "x-death " + ds);
        Map<String, Object> d = ds.get(0);
        check(d.keySet().equals(new java.util.HashSet<>(Arrays.asList("count", "reason", "queue", "time",
                "exchange", "routing-keys", "original-expiration"))), "x-death keys " + d.keySet());
        // count is a long field: the client gives a Long.
        check(Long.valueOf(1).equals(d.get("count")), "count " + d.get("count") + " "
                + (d.get("count") == null ? null : d.get("count").getClass()));
        check(str(d.get("reason")).equals("rejected") && str(d.get("queue")).equals(work)
                && str(d.get("exchange")).equals(ex), "x-death " + d);
        check(strs(d.get("routing-keys")).equals(Arrays.asList("k1", "k2")), "routing-keys " + d);
        check(str(d.get("original-expiration")).equals("60000"), "original-expiration " + d);
        check(d.get("time") instanceof Date
                && Math.abs(((Date) d.get("time")).getTime() - System.currentTimeMillis()) < 300_000,
                "time " + d.get("time"));

        String dlx2 = unique("java-dlx-direct"), work2 = unique("java-work"), dlq2 = unique("java-dlq");
        c.exchangeDeclare(dlx2, BuiltinExchangeType.DIRECT);
        c.queueDeclare(work2, false, false, false,
                Map.of("x-dead-letter-exchange", dlx2, "x-dead-letter-routing-key", "dead"));
        c.queueDeclare(dlq2, false, false, false, null);
        c.queueBind(work2, ex, "k3");
        c.queueBind(dlq2, dlx2, "dead");
        c.basicPublish(ex, "k3", new AMQP.BasicProperties.Builder()
                .headers(Map.of("CC", Arrays.asList("k4"))).build(), b("dl2"));
        c.basicNack(getOne(c, work2, false).getEnvelope().getDeliveryTag(), false, false);
        r = getOne(c, dlq2, true);
        check(r.getEnvelope().getRoutingKey().equals("dead"), "routing key " + r.getEnvelope());
        check(!r.getProps().getHeaders().containsKey("CC"), "CC kept: " + r.getProps().getHeaders());
        d = deaths(r.getProps().getHeaders()).get(0);
        check(strs(d.get("routing-keys")).equals(Arrays.asList("k3", "k4")), "routing-keys " + d);
        check(!d.containsKey("original-expiration"), "x-death " + d);
        for (String q : new String[] {work, dlq, work2, dlq2}) c.queueDelete(q);
        for (String x : new String[] {ex, dlx, dlx2}) c.exchangeDelete(x);
    }

    static void deadLetterTtlRetryLoop() throws Exception {
        Channel c = main();
        String work = unique("java-work"), retry = unique("java-retry");
        c.queueDeclare(work, false, false, false,
                Map.of("x-dead-letter-exchange", "", "x-dead-letter-routing-key", retry));
        c.queueDeclare(retry, false, false, false, Map.of("x-message-ttl", 50,
                "x-dead-letter-exchange", "", "x-dead-letter-routing-key", work));
        c.basicPublish("", work, null, b("retry"));
        for (int n = 1; n <= 3; n++) {
            GetResponse r = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (r == null && System.nanoTime() < deadline) {
                r = c.basicGet(work, false);
                if (r == null) Thread.sleep(20);
            }
            check(r != null, "round " + n + ": message did not come back");
            List<String> got = new ArrayList<>();
            for (Map<String, Object> d : deaths(r.getProps().getHeaders())) {
                got.add(str(d.get("queue")) + "/" + str(d.get("reason")) + "/" + d.get("count")
                        + "/" + d.get("count").getClass().getSimpleName());
            }
            List<String> want = n == 1 ? Collections.emptyList() : Arrays.asList(
                    retry + "/expired/" + (n - 1) + "/Long", work + "/rejected/" + (n - 1) + "/Long");
            check(got.equals(want), "round " + n + ": x-death " + got);
            c.basicReject(r.getEnvelope().getDeliveryTag(), false);
        }
        c.queueDelete(work);
        c.queueDelete(retry);
    }

    static void maxLengthRejectPublish() throws Exception {
        Channel c = conn.createChannel();
        c.confirmSelect();
        String q = unique("java-maxlen");
        c.queueDeclare(q, false, false, false, Map.of("x-max-length", 2, "x-overflow", "reject-publish"));
        List<Boolean> acked = new ArrayList<>();
        for (String body : new String[] {"m1", "m2", "m3"}) {
            c.basicPublish("", q, null, b(body));
            acked.add(c.waitForConfirms(5000));
        }
        check(acked.equals(Arrays.asList(true, true, false)), "confirms (true = ack) " + acked);
        check(count(q) == 2, "count " + count(q));
        c.queueDelete(q);
        c.close();
        Channel m = main();
        String q2 = unique("java-drophead");
        m.queueDeclare(q2, false, false, false, Map.of("x-max-length", 2, "x-overflow", "drop-head"));
        for (String body : new String[] {"d1", "d2", "d3"}) m.basicPublish("", q2, null, b(body));
        check(eventually(() -> countQuietly(q2) == 2), "count " + countQuietly(q2));
        String first = s(m.basicGet(q2, true).getBody()), second = s(m.basicGet(q2, true).getBody());
        check(first.equals("d2") && second.equals("d3"), "got " + first + ", " + second);
        m.queueDelete(q2);
    }

    static void priorityOrder() throws Exception {
        Channel c = main();
        String q = unique("java-prio");
        c.queueDeclare(q, false, false, false, Map.of("x-max-priority", 10));
        Object[][] sent = {{"p1", 1}, {"p5a", 5}, {"p9", 9}, {"p0", 0}, {"p5b", 5}, {"p200", 200}, {"none", null}};
        for (Object[] m : sent) {
            c.basicPublish("", q, new AMQP.BasicProperties.Builder().priority((Integer) m[1]).build(),
                    b((String) m[0]));
        }
        check(eventually(() -> countQuietly(q) == sent.length), "count " + countQuietly(q));
        Collector col = new Collector(c);
        String tag = c.basicConsume(q, true, col);
        List<String> got = new ArrayList<>();
        for (int i = 0; i < sent.length; i++) {
            Object[] d = col.got.poll(5, TimeUnit.SECONDS);
            check(d != null, "timed out after " + got);
            got.add(s((byte[]) d[2]) + "/" + ((AMQP.BasicProperties) d[1]).getPriority());
        }
        c.basicCancel(tag);
        // Above x-max-priority counts as the max; no priority counts as 0; FIFO within one.
        check(got.equals(Arrays.asList("p200/200", "p9/9", "p5a/5", "p5b/5", "p1/1", "p0/0", "none/null")),
                "order " + got);
        c.queueDelete(q);
    }

    // rabbitmq-delayed-message-exchange's interface (Warren only: the reference RabbitMQ has
    // no such plugin). The x-delay 300 message is held and routed after the x-delay 0 one,
    // not before 300 ms, with x-delay set to -300 (as the plugin does).
    static void delayedMessageExchange() throws Exception {
        Channel c = conn.createChannel();
        c.confirmSelect();
        String x = unique("java-delayed");
        c.exchangeDeclare(x, "x-delayed-message", false, false, Map.of("x-delayed-type", "direct"));
        String q = unique("java-delayed-q");
        c.queueDeclare(q, false, true, false, null);
        c.queueBind(q, x, "k");
        Collector col = new Collector(c);
        String tag = c.basicConsume(q, true, col);
        long start = System.nanoTime();
        c.basicPublish(x, "k", new AMQP.BasicProperties.Builder().headers(Map.of("x-delay", 300)).build(), b("later"));
        c.basicPublish(x, "k", new AMQP.BasicProperties.Builder().headers(Map.of("x-delay", 0)).build(), b("now"));
        c.waitForConfirmsOrDie(5000);
        Object[] first = col.got.poll(5, TimeUnit.SECONDS);
        check(first != null && s((byte[]) first[2]).equals("now"), "first delivery not the undelayed one");
        Object[] second = col.got.poll(5, TimeUnit.SECONDS);
        long elapsedMs = (System.nanoTime() - start) / 1_000_000;
        check(second != null && s((byte[]) second[2]).equals("later"), "no delayed delivery");
        check(elapsedMs >= 300, "the delayed message arrived after " + elapsedMs + " ms");
        Object delay = ((AMQP.BasicProperties) second[1]).getHeaders().get("x-delay");
        check(delay instanceof Number && ((Number) delay).intValue() == -300, "x-delay " + delay);
        c.basicCancel(tag);
        c.exchangeDelete(x);
    }

    /** A quorum queue with x-delivery-limit 2 and a DLX: publish with confirms, consume, nack
     *  with requeue until the message passes the limit and is dead-lettered. */
    static void quorumDeliveryLimit() throws Exception {
        Channel c = conn.createChannel();
        c.confirmSelect();
        String dlx = unique("java-qq-dlx"), dlq = unique("java-qq-dlq"), qq = unique("java-qq");
        c.exchangeDeclare(dlx, "fanout");
        c.queueDeclare(dlq, true, false, false, null);
        c.queueBind(dlq, dlx, "");
        c.queueDeclare(qq, true, false, false,
                Map.of("x-queue-type", "quorum", "x-delivery-limit", 2, "x-dead-letter-exchange", dlx));
        c.basicPublish("", qq, new AMQP.BasicProperties.Builder().headers(Map.of("app", "x")).build(),
                b("poison"));
        check(c.waitForConfirms(5000), "publish not confirmed");
        List<String> seen = new ArrayList<>();
        String tag = c.basicConsume(qq, false, new DefaultConsumer(c) {
            @Override
            public void handleDelivery(String t, Envelope env, AMQP.BasicProperties props, byte[] body)
                    throws IOException {
                Object n = props.getHeaders() == null ? null : props.getHeaders().get("x-delivery-count");
                synchronized (seen) {
                    seen.add(env.isRedeliver() + "/" + n);
                }
                getChannel().basicNack(env.getDeliveryTag(), false, true);
            }
        });
        check(eventually(() -> countQuietly(dlq) == 1), "nothing dead-lettered");
        c.basicCancel(tag);
        synchronized (seen) {
            check(seen.equals(Arrays.asList("false/null", "true/1", "true/2")), "deliveries " + seen);
        }
        check(count(qq) == 0, "quorum queue holds " + count(qq));
        GetResponse got = c.basicGet(dlq, true);
        check(got != null && s(got.getBody()).equals("poison"), "dead letter");
        Map<String, Object> h = got.getProps().getHeaders();
        check(String.valueOf(h.get("x-first-death-reason")).equals("delivery_limit"), "headers " + h);
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> deaths = (List<Map<String, Object>>) h.get("x-death");
        check(String.valueOf(deaths.get(0).get("reason")).equals("delivery_limit"), "x-death " + deaths);
        check(!h.containsKey("x-delivery-count"), "the dead letter carries x-delivery-count");
        c.queueDelete(qq);
        c.queueDelete(dlq);
        c.exchangeDelete(dlx);
        c.close();
    }

    static void closeCleanly() throws Exception {
        main().close();
        conn.close();
        check(!conn.isOpen(), "connection not closed");
        check(conn.getCloseReason().isInitiatedByApplication(), "close not initiated by us");
    }

    public static void main(String[] args) throws Exception {
        Object[][] scenarios = {
            {"connect_heartbeat", (Scenario) WarrenJavaClient::connectHeartbeat},
            {"exchange_types", (Scenario) WarrenJavaClient::exchangeTypes},
            {"exchange_to_exchange_binding", (Scenario) WarrenJavaClient::exchangeToExchange},
            {"queue_durable", (Scenario) WarrenJavaClient::queueDurable},
            {"queue_exclusive", (Scenario) WarrenJavaClient::queueExclusive},
            {"queue_auto_delete", (Scenario) WarrenJavaClient::queueAutoDelete},
            {"queue_server_named", (Scenario) WarrenJavaClient::queueServerNamed},
            {"passive_declare_missing_404", (Scenario) WarrenJavaClient::passiveMissing404},
            {"publish_confirms", (Scenario) WarrenJavaClient::publishConfirms},
            {"mandatory_unroutable_return", (Scenario) WarrenJavaClient::mandatoryReturn},
            {"consume_manual_ack", (Scenario) WarrenJavaClient::consumeManualAck},
            {"nack_requeue_redelivered", (Scenario) WarrenJavaClient::nackRequeue},
            {"reject_without_requeue", (Scenario) WarrenJavaClient::rejectNoRequeue},
            {"basic_get_empty_and_nonempty", (Scenario) WarrenJavaClient::basicGet},
            {"prefetch_honoured", (Scenario) WarrenJavaClient::prefetch},
            {"cancel_consumer", (Scenario) WarrenJavaClient::cancelConsumer},
            {"tx_commit_rollback", (Scenario) WarrenJavaClient::transactions},
            {"headers_nested_roundtrip", (Scenario) WarrenJavaClient::headersRoundtrip},
            {"large_message_roundtrip", (Scenario) WarrenJavaClient::largeMessage},
            {"dead_letter_x_death", (Scenario) WarrenJavaClient::deadLetterXDeath},
            {"dead_letter_ttl_retry_loop", (Scenario) WarrenJavaClient::deadLetterTtlRetryLoop},
            {"max_length_reject_publish", (Scenario) WarrenJavaClient::maxLengthRejectPublish},
            {"priority_order", (Scenario) WarrenJavaClient::priorityOrder},
            {"delayed_message_exchange", (Scenario) WarrenJavaClient::delayedMessageExchange},
            {"quorum_delivery_limit", (Scenario) WarrenJavaClient::quorumDeliveryLimit},
            {"close_cleanly", (Scenario) WarrenJavaClient::closeCleanly},
        };
        ExecutorService exec = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        int failed = 0;
        for (Object[] sc : scenarios) {
            String name = (String) sc[0];
            Scenario fn = (Scenario) sc[1];
            Future<?> f = exec.submit(() -> {
                fn.run();
                return null;
            });
            try {
                f.get(30, TimeUnit.SECONDS);
                System.out.println("PASS " + name);
            } catch (TimeoutException e) {
                f.cancel(true);
                failed++;
                System.out.println("FAIL " + name + ": no result within 30 s");
            } catch (java.util.concurrent.ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof Skip) {
                    System.out.println("SKIP " + name + ": " + cause.getMessage() + " (API lacks it)");
                } else {
                    failed++;
                    System.out.println("FAIL " + name + ": " + String.valueOf(cause).replace('\n', ' '));
                    if (System.getenv("CLIENT_DEBUG") != null) cause.printStackTrace();
                }
            }
            System.out.flush();
        }
        System.exit(failed > 0 ? 1 : 0);
    }
}
