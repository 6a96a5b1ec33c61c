// Client-compatibility scenarios with amqp091-go (github.com/rabbitmq/amqp091-go).
// AMQP_URL names the broker. One line per scenario; exit 1 on any FAIL.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const heartbeat = 2 * time.Second

type skip struct{ why string }

func (s skip) Error() string { return s.why }

var (
	conn *amqp.Connection
	ch   *amqp.Channel
)

func url() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/%2f"
}

func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func check(cond bool, format string, args ...interface{}) {
	if !cond {
		panic(fmt.Errorf(format, args...))
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func connect() *amqp.Connection {
	c, err := amqp.DialConfig(url(), amqp.Config{Heartbeat: heartbeat, Locale: "en_US"})
	must(err)
	return c
}

func mainCh() *amqp.Channel {
	if ch == nil || ch.IsClosed() {
		var err error
		ch, err = conn.Channel()
		must(err)
	}
	return ch
}

func queue(durable, autoDelete, exclusive bool) string {
	q, err := mainCh().QueueDeclare(unique("go"), durable, autoDelete, exclusive, false, nil)
	must(err)
	return q.Name
}

func count(name string) int {
	q, err := mainCh().QueueDeclarePassive(name, false, false, false, false, nil)
	must(err)
	return q.Messages
}

func publish(c *amqp.Channel, exchange, key string, msg amqp.Publishing) {
	must(c.PublishWithContext(context.Background(), exchange, key, false, false, msg))
}

func body(s string) amqp.Publishing { return amqp.Publishing{Body: []byte(s)} }

func expectCode(code int, err error) *amqp.Error {
	check(err != nil, "expected a %d error, the operation succeeded", code)
	var e *amqp.Error
	check(errors.As(err, &e), "not an AMQP error: %v", err)
	check(e.Code == code, "reply code %d, expected %d: %v", e.Code, code, e)
	return e
}

func eventually(f func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return f()
}

func getWait(c *amqp.Channel, q string, autoAck bool) (amqp.Delivery, bool) {
	for i := 0; i < 100; i++ {
		d, ok, err := c.Get(q, autoAck)
		must(err)
		if ok {
			return d, true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return amqp.Delivery{}, false
}

// ---- scenarios ----

func connectHeartbeat() {
	conn = connect()
	check(conn.Config.Heartbeat == heartbeat, "negotiated heartbeat %v", conn.Config.Heartbeat)
	time.Sleep(heartbeat * 5 / 2)
	check(!conn.IsClosed(), "connection closed while idle with heartbeats")
	q := queue(false, false, true)
	check(count(q) == 0, "round trip after idle period")
}

func exchangeTypes() {
	c := mainCh()
	for _, kind := range []string{"direct", "fanout", "topic", "headers"} {
		ex := unique("go-" + kind)
		must(c.ExchangeDeclare(ex, kind, false, false, false, false, nil))
		q := queue(false, false, false)
		if kind == "headers" {
			must(c.QueueBind(q, "", ex, false, amqp.Table{"x-match": "all", "k": "v"}))
		} else {
			must(c.QueueBind(q, "a.b", ex, false, nil))
		}
		publish(c, ex, "a.b", amqp.Publishing{Headers: amqp.Table{"k": "v"}, Body: []byte("m")})
		d, ok := getWait(c, q, true)
		check(ok && string(d.Body) == "m", "%s exchange did not route", kind)
		must(c.ExchangeDelete(ex, false, false))
		_, err := c.QueueDelete(q, false, false, false)
		must(err)
	}
}

func exchangeToExchange() {
	c := mainCh()
	src, dst := unique("go-src"), unique("go-dst")
	must(c.ExchangeDeclare(src, "topic", false, false, false, false, nil))
	must(c.ExchangeDeclare(dst, "fanout", false, false, false, false, nil))
	must(c.ExchangeBind(dst, "a.#", src, false, nil))
	q := queue(false, false, false)
	must(c.QueueBind(q, "", dst, false, nil))
	publish(c, src, "a.b.c", body("e2e"))
	publish(c, src, "b.c", body("nope"))
	check(eventually(func() bool { return count(q) == 1 }), "expected 1 message via e2e, got %d", count(q))
	must(c.ExchangeUnbind(dst, "a.#", src, false, nil))
	must(c.ExchangeDelete(src, false, false))
	must(c.ExchangeDelete(dst, false, false))
	_, err := c.QueueDelete(q, false, false, false)
	must(err)
}

func queueDurable() {
	q := queue(true, false, false)
	_, err := mainCh().QueueDeclare(q, true, false, false, false, nil)
	must(err)
	_, err = mainCh().QueueDeclare(q, false, false, false, false, nil)
	expectCode(406, err)
	_, err = mainCh().QueueDelete(q, false, false, false)
	must(err)
}

func queueExclusive() {
	q := queue(false, false, true)
	other := connect()
	defer other.Close()
	oc, err := other.Channel()
	must(err)
	_, err = oc.Consume(q, "", true, false, false, false, nil)
	expectCode(405, err)
	_, err = mainCh().QueueDelete(q, false, false, false)
	must(err)
}

func queueAutoDelete() {
	q := queue(false, true, false)
	c := mainCh()
	_, err := c.Consume(q, "ad", true, false, false, false, nil)
	must(err)
	must(c.Cancel("ad", false))
	_, err = c.QueueDeclarePassive(q, false, true, false, false, nil)
	expectCode(404, err)
}

func queueServerNamed() {
	q, err := mainCh().QueueDeclare("", false, true, true, false, nil)
	must(err)
	check(strings.HasPrefix(q.Name, "amq.gen-"), "server-named queue %q", q.Name)
	_, err = mainCh().QueueDelete(q.Name, false, false, false)
	must(err)
}

func passiveMissing404() {
	_, err := mainCh().QueueDeclarePassive(unique("go-missing"), false, false, false, false, nil)
	e := expectCode(404, err)
	check(strings.HasPrefix(e.Reason, "NOT_FOUND"), "reason %q", e.Reason)
	check(!conn.IsClosed(), "connection closed on a channel error")
	mainCh()
}

func publishConfirms() {
	c, err := conn.Channel()
	must(err)
	defer c.Close()
	must(c.Confirm(false))
	confirms := c.NotifyPublish(make(chan amqp.Confirmation, 32))
	q := unique("go-confirm")
	_, err = c.QueueDeclare(q, true, false, false, false, nil)
	must(err)
	for i := 0; i < 20; i++ {
		publish(c, "", q, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf("c%d", i))})
	}
	for i := 1; i <= 20; i++ {
		select {
		case conf := <-confirms:
			check(conf.Ack && conf.DeliveryTag == uint64(i), "confirm %+v, expected ack of %d", conf, i)
		case <-time.After(5 * time.Second):
			panic(fmt.Errorf("no confirm for publish %d", i))
		}
	}
	check(eventually(func() bool { return count(q) == 20 }), "count %d", count(q))
	_, err = c.QueueDelete(q, false, false, false)
	must(err)
}

func mandatoryReturn() {
	c, err := conn.Channel()
	must(err)
	defer c.Close()
	returns := c.NotifyReturn(make(chan amqp.Return, 1))
	key := unique("go-unroutable")
	must(c.PublishWithContext(context.Background(), "", key, true, false, body("ret")))
	select {
	case r := <-returns:
		check(r.ReplyCode == 312 && r.ReplyText == "NO_ROUTE", "%d %s", r.ReplyCode, r.ReplyText)
		check(r.RoutingKey == key && string(r.Body) == "ret", "returned %q", r.RoutingKey)
	case <-time.After(5 * time.Second):
		panic(errors.New("no basic.return"))
	}
}

func consumeManualAck() {
	c := mainCh()
	q := queue(false, false, false)
	for i := 0; i < 3; i++ {
		publish(c, "", q, body(fmt.Sprintf("m%d", i)))
	}
	deliveries, err := c.Consume(q, "manual", false, false, false, false, nil)
	must(err)
	var got []string
	for len(got) < 3 {
		select {
		case d := <-deliveries:
			got = append(got, string(d.Body))
			must(d.Ack(false))
		case <-time.After(5 * time.Second):
			panic(fmt.Errorf("timed out waiting for deliveries, got %v", got))
		}
	}
	must(c.Cancel("manual", false))
	check(reflect.DeepEqual(got, []string{"m0", "m1", "m2"}), "got %v", got)
	check(count(q) == 0, "acked messages still in queue")
	_, err = c.QueueDelete(q, false, false, false)
	must(err)
}

func nackRequeue() {
	c := mainCh()
	q := queue(false, false, false)
	publish(c, "", q, body("n"))
	d, ok := getWait(c, q, false)
	check(ok && !d.Redelivered, "first get")
	must(d.Nack(false, true))
	d, ok = getWait(c, q, false)
	check(ok && d.Redelivered && string(d.Body) == "n", "not redelivered")
	must(d.Ack(false))
	_, err := c.QueueDelete(q, false, false, false)
	must(err)
}

func rejectNoRequeue() {
	c := mainCh()
	q := queue(false, false, false)
	publish(c, "", q, body("r"))
	d, ok := getWait(c, q, false)
	check(ok, "no message")
	must(d.Reject(false))
	check(count(q) == 0, "rejected message still in queue")
	_, ok, err := c.Get(q, false)
	must(err)
	check(!ok, "rejected message delivered again")
	_, err = c.QueueDelete(q, false, false, false)
	must(err)
}

func basicGet() {
	c := mainCh()
	q := queue(false, false, false)
	_, ok, err := c.Get(q, true)
	must(err)
	check(!ok, "get on an empty queue returned a message")
	publish(c, "", q, body("g1"))
	publish(c, "", q, body("g2"))
	check(eventually(func() bool { return count(q) == 2 }), "publishes not queued")
	d, ok, err := c.Get(q, true)
	must(err)
	check(ok && string(d.Body) == "g1" && d.MessageCount == 1, "message count %d", d.MessageCount)
	_, err = c.QueueDelete(q, false, false, false)
	must(err)
}

func prefetch() {
	q := queue(false, false, false)
	for i := 0; i < 5; i++ {
		publish(mainCh(), "", q, body(fmt.Sprintf("p%d", i)))
	}
	c, err := conn.Channel()
	must(err)
	defer c.Close()
	must(c.Qos(2, 0, false))
	deliveries, err := c.Consume(q, "", false, false, false, false, nil)
	must(err)
	var got []amqp.Delivery
	// Take deliveries until there are `want` (5 s at most), then 300 ms more.
	settle := func(want int) {
		deadline := time.After(5 * time.Second)
		for len(got) < want {
			select {
			case m := <-deliveries:
				got = append(got, m)
			case <-deadline:
				return
			}
		}
		extra := time.After(300 * time.Millisecond)
		for {
			select {
			case m := <-deliveries:
				got = append(got, m)
			case <-extra:
				return
			}
		}
	}
	settle(2)
	check(len(got) == 2, "%d unacked deliveries with prefetch 2", len(got))
	must(got[0].Ack(false))
	settle(3)
	check(len(got) == 3, "%d deliveries after one ack", len(got))
	_, err = mainCh().QueueDelete(q, false, false, false)
	must(err)
}

func cancelConsumer() {
	c := mainCh()
	q := queue(false, false, false)
	deliveries, err := c.Consume(q, "cancel-me", true, false, false, false, nil)
	must(err)
	must(c.Cancel("cancel-me", false))
	publish(c, "", q, body("after-cancel"))
	time.Sleep(300 * time.Millisecond)
	select {
	case d, open := <-deliveries:
		check(!open, "delivery after cancel: %q", d.Body)
	default:
	}
	check(eventually(func() bool { return count(q) == 1 }), "message not left in the queue")
	_, err = c.QueueDelete(q, false, false, false)
	must(err)
}

func transactions() {
	q := queue(false, false, false)
	c, err := conn.Channel()
	must(err)
	defer c.Close()
	must(c.Tx())
	publish(c, "", q, body("rolled-back"))
	must(c.TxRollback())
	check(count(q) == 0, "rolled-back publish delivered")
	publish(c, "", q, body("committed"))
	check(count(q) == 0, "uncommitted publish visible")
	must(c.TxCommit())
	check(eventually(func() bool { return count(q) == 1 }), "committed publish missing")
	d, ok, err := c.Get(q, false)
	must(err)
	check(ok, "no message")
	must(d.Ack(false))
	must(c.TxCommit())
	check(count(q) == 0, "committed ack did not remove the message")
	_, err = mainCh().QueueDelete(q, false, false, false)
	must(err)
}

// plain normalises decoded field values (every integer width to int64) for comparison.
func plain(v interface{}) interface{} {
	switch x := v.(type) {
	case amqp.Table:
		out := map[string]interface{}{}
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	}
	return v
}

func headersRoundtrip() {
	c := mainCh()
	q := queue(false, false, false)
	headers := amqp.Table{
		"str":   "hello",
		"int":   int32(42),
		"neg":   int32(-7),
		"bool":  true,
		"table": amqp.Table{"inner": "x", "num": int32(1), "deeper": amqp.Table{"leaf": "y"}},
		"array": []interface{}{int32(1), "two", amqp.Table{"k": "v"}},
	}
	ts := time.Unix(1700000000, 0)
	publish(c, "", q, amqp.Publishing{
		Headers: headers, ContentType: "text/plain", Priority: 3, CorrelationId: "cid",
		MessageId: "mid", Timestamp: ts, Type: "t", AppId: "go", Expiration: "60000",
		ReplyTo: "rq", DeliveryMode: amqp.Persistent, Body: []byte("h"),
	})
	d, ok := getWait(c, q, true)
	check(ok, "no message")
	check(reflect.DeepEqual(plain(d.Headers), plain(headers)), "headers %#v", d.Headers)
	check(d.ContentType == "text/plain" && d.Priority == 3 && d.CorrelationId == "cid" &&
		d.MessageId == "mid" && d.Timestamp.Equal(ts) && d.Type == "t" && d.AppId == "go" &&
		d.Expiration == "60000" && d.ReplyTo == "rq" && d.DeliveryMode == amqp.Persistent,
		"properties %+v", d)
	_, err := c.QueueDelete(q, false, false, false)
	must(err)
}

func largeMessage() {
	c := mainCh()
	q := queue(false, false, false)
	data := make([]byte, 1<<20+3) // many body frames
	for i := range data {
		data[i] = byte(i)
	}
	publish(c, "", q, amqp.Publishing{Body: data})
	d, ok := getWait(c, q, true)
	check(ok && reflect.DeepEqual(d.Body, data), "body of %d bytes differs", len(d.Body))
	_, err := c.QueueDelete(q, false, false, false)
	must(err)
}

// A publish to a missing exchange, then the channel closed at once (Go programs
// `defer ch.Close()`): the server's 404 channel.close and the client's channel.close cross
// on the wire. The connection and its other channels must stay usable.
func closeCrossingServerClose() {
	other, err := conn.Channel()
	must(err)
	defer other.Close()
	q, err := other.QueueDeclare("", false, true, true, false, nil)
	must(err)
	deliveries, err := other.Consume(q.Name, "", true, false, false, false, nil)
	must(err)
	for i := 0; i < 3; i++ {
		func() {
			c, err := conn.Channel()
			must(err)
			defer c.Close()
			publish(c, unique("go-missing"), "k", body("lost"))
		}()
		want := fmt.Sprintf("alive-%d", i)
		publish(other, "", q.Name, body(want))
		select {
		case d, open := <-deliveries:
			check(open && string(d.Body) == want, "delivery %q (open %v), expected %q", d.Body, open, want)
		case <-time.After(5 * time.Second):
			panic(fmt.Errorf("no delivery on the other channel after crossing close %d (connection closed: %v)", i, conn.IsClosed()))
		}
	}
	check(!conn.IsClosed(), "connection closed")
	fresh, err := conn.Channel()
	must(err)
	defer fresh.Close()
	_, err = fresh.QueueDeclarePassive(q.Name, false, true, true, false, nil)
	must(err)
}

// connection.update-secret with the connection's own password (what a client refreshing
// an OAuth 2 token sends); the connection keeps working. (A wrong secret is not a
// scenario: RabbitMQ 3.10's internal users accept any secret, Warren refuses it.)
func updateSecret() {
	uri, err := amqp.ParseURI(url())
	must(err)
	must(conn.UpdateSecret(uri.Password, "token refresh"))
	check(!conn.IsClosed(), "connection closed after update-secret")
	q := queue(false, false, true)
	check(count(q) == 0, "round trip after update-secret")
}

func sortedKeys(t amqp.Table) []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func deathsOf(h amqp.Table) []amqp.Table {
	v, ok := h["x-death"]
	if !ok {
		return nil
	}
	arr, ok := v.([]interface{})
	check(ok, "x-death is %T, not an array", v)
	out := make([]amqp.Table, 0, len(arr))
	for _, e := range arr {
		t, ok := e.(amqp.Table)
		check(ok, "x-death entry is %T, not a table", e)
		out = append(out, t)
	}
	return out
}

func deadLetterXDeath() {
	c := mainCh()
	ex, dlx := unique("go-dl-src"), unique("go-dlx")
	must(c.ExchangeDeclare(ex, "direct", false, false, false, false, nil))
	must(c.ExchangeDeclare(dlx, "fanout", false, false, false, false, nil))
	work, err := c.QueueDeclare(unique("go-work"), false, false, false, false,
		amqp.Table{"x-dead-letter-exchange": dlx})
	must(err)
	dlq := queue(false, false, false)
	must(c.QueueBind(work.Name, "k1", ex, false, nil))
	must(c.QueueBind(work.Name, "k2", ex, false, nil))
	must(c.QueueBind(dlq, "", dlx, false, nil))
	publish(c, ex, "k1", amqp.Publishing{Expiration: "60000",
		Headers: amqp.Table{"CC": []interface{}{"k2"}, "app": "x"}, Body: []byte("dl")})
	d, ok := getWait(c, work.Name, false)
	check(ok, "message not routed")
	must(d.Reject(false))
	d, ok = getWait(c, dlq, true)
	check(ok, "nothing dead-lettered")
	check(string(d.Body) == "dl" && d.Exchange == dlx && d.RoutingKey == "k1",
		"%s %s %q", d.Exchange, d.RoutingKey, d.Body)
	check(d.Expiration == "", "expiration %q kept", d.Expiration)
	h := d.Headers
	check(reflect.DeepEqual(sortedKeys(h), []string{"CC", "app", "x-death", "x-first-death-exchange",
		"x-first-death-queue", "x-first-death-reason"}), "header keys %v", sortedKeys(h))
	check(reflect.DeepEqual(h["CC"], []interface{}{"k2"}) && h["app"] == "x", "headers %v", h)
	check(h["x-first-death-reason"] == "rejected" && h["x-first-death-queue"] == work.Name &&
		h["x-first-death-exchange"] == ex, "x-first-death-* %v", h)
	deaths := deathsOf(h)
	check(len(deaths) == 1, "x-death %v", deaths)
	x := deaths[0]
	check(reflect.DeepEqual(sortedKeys(x), []string{"count", "exchange", "original-expiration", "queue",
		"reason", "routing-keys", "time"}), "x-death keys %v", sortedKeys(x))
	// count is a long field: amqp091-go gives an int64.
	check(x["count"] == int64(1), "count %v (%T)", x["count"], x["count"])
	check(x["reason"] == "rejected" && x["queue"] == work.Name && x["exchange"] == ex, "x-death %v", x)
	check(reflect.DeepEqual(x["routing-keys"], []interface{}{"k1", "k2"}), "routing-keys %v", x["routing-keys"])
	check(x["original-expiration"] == "60000", "original-expiration %v", x["original-expiration"])
	t, ok := x["time"].(time.Time)
	check(ok && time.Since(t).Abs() < 5*time.Minute, "time %v (%T)", x["time"], x["time"])

	dlx2 := unique("go-dlx-direct")
	must(c.ExchangeDeclare(dlx2, "direct", false, false, false, false, nil))
	work2, err := c.QueueDeclare(unique("go-work"), false, false, false, false,
		amqp.Table{"x-dead-letter-exchange": dlx2, "x-dead-letter-routing-key": "dead"})
	must(err)
	dlq2 := queue(false, false, false)
	must(c.QueueBind(work2.Name, "k3", ex, false, nil))
	must(c.QueueBind(dlq2, "dead", dlx2, false, nil))
	publish(c, ex, "k3", amqp.Publishing{Headers: amqp.Table{"CC": []interface{}{"k4"}}, Body: []byte("dl2")})
	d, ok = getWait(c, work2.Name, false)
	check(ok, "message not routed (DLRK)")
	must(d.Nack(false, false))
	d, ok = getWait(c, dlq2, true)
	check(ok, "nothing dead-lettered (DLRK)")
	_, hasCC := d.Headers["CC"]
	check(d.RoutingKey == "dead" && !hasCC, "%s %v", d.RoutingKey, d.Headers)
	x = deathsOf(d.Headers)[0]
	_, hasExp := x["original-expiration"]
	check(reflect.DeepEqual(x["routing-keys"], []interface{}{"k3", "k4"}) && !hasExp, "x-death %v", x)
	for _, q := range []string{work.Name, dlq, work2.Name, dlq2} {
		_, err := c.QueueDelete(q, false, false, false)
		must(err)
	}
	for _, e := range []string{ex, dlx, dlx2} {
		must(c.ExchangeDelete(e, false, false))
	}
}

func deadLetterTTLRetryLoop() {
	c := mainCh()
	work, retry := unique("go-work"), unique("go-retry")
	_, err := c.QueueDeclare(work, false, false, false, false,
		amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": retry})
	must(err)
	_, err = c.QueueDeclare(retry, false, false, false, false, amqp.Table{"x-message-ttl": int32(50),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": work})
	must(err)
	publish(c, "", work, body("retry"))
	for n := int64(1); n <= 3; n++ {
		var d amqp.Delivery
		ok := false
		for deadline := time.Now().Add(10 * time.Second); !ok && time.Now().Before(deadline); {
			if d, ok = getWait(c, work, false); !ok {
				time.Sleep(20 * time.Millisecond)
			}
		}
		check(ok, "round %d: message did not come back", n)
		var got []string
		for _, x := range deathsOf(d.Headers) {
			got = append(got, fmt.Sprintf("%v/%v/%#v", x["queue"], x["reason"], x["count"]))
		}
		var want []string
		if n > 1 {
			want = []string{fmt.Sprintf("%s/expired/%#v", retry, n-1), fmt.Sprintf("%s/rejected/%#v", work, n-1)}
		}
		check(reflect.DeepEqual(got, want), "round %d: x-death %v", n, got)
		must(d.Reject(false))
	}
	for _, q := range []string{work, retry} {
		_, err := c.QueueDelete(q, false, false, false)
		must(err)
	}
}

func maxLengthRejectPublish() {
	c, err := conn.Channel()
	must(err)
	defer c.Close()
	must(c.Confirm(false))
	q, err := c.QueueDeclare(unique("go-maxlen"), false, false, false, false,
		amqp.Table{"x-max-length": int32(2), "x-overflow": "reject-publish"})
	must(err)
	var acks []bool
	for _, b := range []string{"m1", "m2", "m3"} {
		conf, err := c.PublishWithDeferredConfirmWithContext(context.Background(), "", q.Name, false, false, body(b))
		must(err)
		acked := make(chan bool, 1)
		go func() { acked <- conf.Wait() }()
		select {
		case ack := <-acked:
			acks = append(acks, ack)
		case <-time.After(5 * time.Second):
			panic(fmt.Errorf("no confirm for %s", b))
		}
	}
	check(reflect.DeepEqual(acks, []bool{true, true, false}), "confirms (true = ack) %v", acks)
	check(count(q.Name) == 2, "count %d", count(q.Name))
	_, err = c.QueueDelete(q.Name, false, false, false)
	must(err)

	m := mainCh()
	q2, err := m.QueueDeclare(unique("go-drophead"), false, false, false, false,
		amqp.Table{"x-max-length": int32(2), "x-overflow": "drop-head"})
	must(err)
	for _, b := range []string{"d1", "d2", "d3"} {
		publish(m, "", q2.Name, body(b))
	}
	check(eventually(func() bool { return count(q2.Name) == 2 }), "count %d", count(q2.Name))
	var got []string
	for i := 0; i < 2; i++ {
		d, ok := getWait(m, q2.Name, true)
		check(ok, "queue empty after %v", got)
		got = append(got, string(d.Body))
	}
	check(reflect.DeepEqual(got, []string{"d2", "d3"}), "got %v", got)
	_, err = m.QueueDelete(q2.Name, false, false, false)
	must(err)
}

func priorityOrder() {
	c := mainCh()
	q, err := c.QueueDeclare(unique("go-prio"), false, false, false, false, amqp.Table{"x-max-priority": int32(10)})
	must(err)
	type msg struct {
		body     string
		priority uint8
	}
	sent := []msg{{"p1", 1}, {"p5a", 5}, {"p9", 9}, {"p0", 0}, {"p5b", 5}, {"p200", 200}}
	for _, m := range sent {
		publish(c, "", q.Name, amqp.Publishing{Priority: m.priority, Body: []byte(m.body)})
	}
	check(eventually(func() bool { return count(q.Name) == len(sent) }), "count %d", count(q.Name))
	deliveries, err := c.Consume(q.Name, "", false, false, false, false, nil)
	must(err)
	var got []msg
	timeout := time.After(10 * time.Second)
	for len(got) < len(sent) {
		select {
		case d := <-deliveries:
			got = append(got, msg{string(d.Body), d.Priority})
			must(d.Ack(false))
		case <-timeout:
			panic(fmt.Errorf("timed out after %v", got))
		}
	}
	// Above x-max-priority counts as the max; FIFO within one priority.
	want := []msg{{"p200", 200}, {"p9", 9}, {"p5a", 5}, {"p5b", 5}, {"p1", 1}, {"p0", 0}}
	check(reflect.DeepEqual(got, want), "order %v", got)
	_, err = c.QueueDelete(q.Name, false, false, false)
	must(err)
}

func closeCleanly() {
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	must(mainCh().Close())
	must(conn.Close())
	check(conn.IsClosed(), "connection not closed")
	select {
	case e, open := <-closed:
		check(!open && e == nil, "close reported an error: %v", e)
	case <-time.After(5 * time.Second):
		panic(errors.New("close notification channel not closed"))
	}
}

func runOne(fn func()) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				if e, ok := r.(error); ok {
					done <- e
				} else {
					done <- fmt.Errorf("%v", r)
				}
			}
		}()
		fn()
		done <- nil
	}()
	select {
	case err = <-done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("no result within 30 s")
	}
}

func main() {
	scenarios := []struct {
		name string
		fn   func()
	}{
		{"connect_heartbeat", connectHeartbeat},
		{"exchange_types", exchangeTypes},
		{"exchange_to_exchange_binding", exchangeToExchange},
		{"queue_durable", queueDurable},
		{"queue_exclusive", queueExclusive},
		{"queue_auto_delete", queueAutoDelete},
		{"queue_server_named", queueServerNamed},
		{"passive_declare_missing_404", passiveMissing404},
		{"publish_confirms", publishConfirms},
		{"mandatory_unroutable_return", mandatoryReturn},
		{"consume_manual_ack", consumeManualAck},
		{"nack_requeue_redelivered", nackRequeue},
		{"reject_without_requeue", rejectNoRequeue},
		{"basic_get_empty_and_nonempty", basicGet},
		{"prefetch_honoured", prefetch},
		{"cancel_consumer", cancelConsumer},
		{"tx_commit_rollback", transactions},
		{"headers_nested_roundtrip", headersRoundtrip},
		{"large_message_roundtrip", largeMessage},
		{"dead_letter_x_death", deadLetterXDeath},
		{"dead_letter_ttl_retry_loop", deadLetterTTLRetryLoop},
		{"max_length_reject_publish", maxLengthRejectPublish},
		{"priority_order", priorityOrder},
		{"close_crossing_server_close", closeCrossingServerClose},
		{"update_secret", updateSecret},
		{"close_cleanly", closeCleanly},
	}
	failed := 0
	for _, s := range scenarios {
		err := runOne(s.fn)
		var sk skip
		switch {
		case err == nil:
			fmt.Printf("PASS %s\n", s.name)
		case errors.As(err, &sk):
			fmt.Printf("SKIP %s: %s (API lacks it)\n", s.name, sk.why)
		default:
			failed++
			fmt.Printf("FAIL %s: %s\n", s.name, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}
