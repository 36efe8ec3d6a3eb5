"""The few MQTT 3.1.1 packets the load generator sends, encoded by hand.

Why not paho: a paho client costs ~40 µs of Python per QoS 1 message (about 23,000 msg/s
per process, BRIEF.md), slower than the path it has to saturate. Here every PUBLISH is
encoded before the clock starts, and a PUBACK is always the same 4 bytes, so counting
acknowledgements is counting bytes: the generator's Python does a few operations per
*batch* of messages, and its CPU goes to the kernel's socket calls.
"""
import socket
import struct

PUBACK_LEN = 4          # 0x40, remaining length 2, packet id (2 bytes)
PUBACK_TYPE = 0x40
DISCONNECT = b"\xe0\x00"


def remaining_length(n):
    """MQTT's variable-length integer (1–4 bytes, 7 bits each, low first)."""
    if not 0 <= n <= 268_435_455:
        raise ValueError(f"remaining length {n} out of range")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8_field(value):
    data = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id, username=None, password=None, keepalive=0, clean=True):
    """CONNECT, protocol level 4 (MQTT 3.1.1)."""
    flags = 0x02 if clean else 0
    payload = utf8_field(client_id)
    if username is not None:
        flags |= 0x80
        payload += utf8_field(username)
        if password is not None:
            flags |= 0x40
            payload += utf8_field(password)
    body = utf8_field("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + payload
    return b"\x10" + remaining_length(len(body)) + body


def publish_qos1(topic, payload, packet_id):
    """PUBLISH with QoS 1, not retained, not a duplicate."""
    if not 1 <= packet_id <= 65535:
        raise ValueError("packet id must be 1..65535")
    body = utf8_field(topic) + struct.pack("!H", packet_id) + payload
    return b"\x32" + remaining_length(len(body)) + body


def connack_code(data):
    """The return code of a CONNACK (0: accepted); ValueError if `data` is not one."""
    if len(data) < 4 or data[0] != 0x20 or data[1] != 2:
        raise ValueError(f"expected a CONNACK, got {bytes(data[:8])!r}")
    return data[3]


def count_pubacks(data):
    """How many whole PUBACKs `data` (bytes from the broker, aligned on a packet) holds, and
    the trailing partial packet; ValueError if anything but PUBACKs is in it."""
    whole = len(data) - len(data) % PUBACK_LEN
    # Every 4th byte from the first is a packet type; all must be PUBACK (bytes compare in C).
    if data[0:whole:PUBACK_LEN] != bytes([PUBACK_TYPE]) * (whole // PUBACK_LEN):
        raise ValueError("the broker sent something other than PUBACKs")
    return whole // PUBACK_LEN, bytes(data[whole:])


def open_session(host, port, client_id, username, password, timeout=10.0):
    """A connected, blocking socket after an accepted CONNECT."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id, username, password))
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection before CONNACK")
        data += chunk
    code = connack_code(data)
    if code:
        sock.close()
        raise ConnectionError(f"the broker refused the connection (CONNACK code {code})")
    return sock


def publish_once(host, port, username, password, topic, payload, client_id="bench-probe"):
    """Publish one QoS 1 message and wait for its PUBACK."""
    sock = open_session(host, port, client_id, username, password)
    try:
        sock.sendall(publish_qos1(topic, payload, 1))
        data = b""
        while len(data) < PUBACK_LEN:
            chunk = sock.recv(PUBACK_LEN - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection before PUBACK")
            data += chunk
        count_pubacks(data)
        sock.sendall(DISCONNECT)
    finally:
        sock.close()


def subscribe_packet(topic, qos=1, packet_id=1):
    """SUBSCRIBE to one topic filter."""
    body = struct.pack("!H", packet_id) + utf8_field(topic) + bytes([qos])
    return b"\x82" + remaining_length(len(body)) + body


def split_publishes(data):
    """Parse a stream of packets from the broker: (payloads of the PUBLISHes, the PUBACKs
    that acknowledge the QoS 1 ones, the unparsed tail). Other packets are skipped."""
    payloads, acks, i, end = [], [], 0, len(data)
    while i + 2 <= end:
        first = data[i]
        # remaining length: one byte for every packet under 128 bytes, up to four
        j, length, shift = i + 1, 0, 0
        while j < end:
            byte = data[j]
            length |= (byte & 0x7F) << shift
            j += 1
            if byte < 0x80:
                break
            shift += 7
        else:
            break
        if j + length > end:
            break
        if first >> 4 == 3:
            topic_end = j + 2 + (data[j] << 8 | data[j + 1])
            if first & 0x06:  # QoS 1 (or 2): a packet id follows the topic
                acks.append(b"\x40\x02" + data[topic_end:topic_end + 2])
                topic_end += 2
            payloads.append(data[topic_end:j + length])
        i = j + length
    return payloads, b"".join(acks), data[i:]
