"""The test receiver treats a body cut short by a killed sender as a broken connection."""

from __future__ import annotations

import socket
import time

from devservices.webhook_receiver import WebhookReceiver


def test_a_truncated_body_is_not_a_bad_signature() -> None:
    with WebhookReceiver(b"secret") as receiver:
        host, port = receiver.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n[{"event_id":'
            )
        time.sleep(0.5)  # let the handler thread read to the end of the cut connection
        assert receiver.bad_signatures == 0
