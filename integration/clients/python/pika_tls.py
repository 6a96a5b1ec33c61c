"""pika over amqps against Warren: PLAIN or EXTERNAL (client certificate), one message
published and fetched back. Prints "OK <MECHANISM>", or with EXPECT_REFUSED=1
"REFUSED 403 <MECHANISM>" when the broker refuses the login with RabbitMQ's 403.

Environment: AMQPS_PORT, CA_FILE, MECHANISM (PLAIN | EXTERNAL), CLIENT_CERT and
CLIENT_KEY (optional), EXPECT_REFUSED (optional).
"""

import os
import ssl
import sys
import time

import pika

port = int(os.environ["AMQPS_PORT"])
mechanism = os.environ.get("MECHANISM", "PLAIN")
context = ssl.create_default_context(cafile=os.environ["CA_FILE"])
if os.environ.get("CLIENT_CERT"):
    context.load_cert_chain(os.environ["CLIENT_CERT"], os.environ["CLIENT_KEY"])
credentials = (
    pika.credentials.ExternalCredentials()
    if mechanism == "EXTERNAL"
    else pika.PlainCredentials("guest", "guest")
)
params = pika.ConnectionParameters(
    host="127.0.0.1",
    port=port,
    virtual_host="/",
    credentials=credentials,
    ssl_options=pika.SSLOptions(context, "localhost"),
    connection_attempts=1,
    socket_timeout=30,
)

try:
    connection = pika.BlockingConnection(params)
except pika.exceptions.AMQPConnectionError as e:
    if os.environ.get("EXPECT_REFUSED"):
        # pika reports the broker's connection.close 403 as a
        # ProbableAuthenticationError quoting its code and text.
        print(f"refused: {e!r}")
        refusal = f"(403) 'ACCESS_REFUSED - Login was refused using authentication mechanism {mechanism}."
        if refusal in repr(e):
            print(f"REFUSED 403 {mechanism}")
            sys.exit(0)
    raise

if os.environ.get("EXPECT_REFUSED"):
    print("logged in although a refusal was expected")
    sys.exit(1)

channel = connection.channel()
queue = channel.queue_declare(queue="", exclusive=True).method.queue
channel.basic_publish(exchange="", routing_key=queue, body=b"over tls")
body = None
deadline = time.time() + 30
while body is None and time.time() < deadline:
    method, _props, body = channel.basic_get(queue=queue, auto_ack=True)
    if method is None:
        body = None
        time.sleep(0.05)
assert body == b"over tls", body
connection.close()
print(f"OK {mechanism}")
