"""A browser's Socket.IO connection to the portal, by hand: the WebSocket upgrade, frames, and
the few Engine.IO / Socket.IO packets a live page exchanges (open, connect, ping/pong,
events).

Why not python-socketio's client: it decodes every event's JSON, and a hundred of them in
Python would take more CPU than the portal that serves them (each live event is a whole
batch of readings). Here a watcher only finds where each frame ends and notes when it
arrived; the events are decoded once, after the run (bench/live.py).
"""
import base64
import os
import socket
import struct

TEXT, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x8, 0x9, 0xA, 0x0
EIO_PING, EIO_PONG = "2", "3"
EVENT_PREFIX = b"42"  # Engine.IO message (4) holding a Socket.IO event (2), namespace "/"


def upgrade_request(host, port, cookie):
    """The HTTP request that opens the portal's Socket.IO WebSocket with a session cookie."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://{host}:{port}\r\nCookie: {cookie}\r\n\r\n").encode()


def client_frame(text, opcode=TEXT):
    """A masked frame from the client (RFC 6455: a client masks every frame it sends)."""
    data = text.encode() if isinstance(text, str) else text
    mask = os.urandom(4)
    n = len(data)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return header + mask + masked


def split_frames(data):
    """Whole frames from the server in `data`: ([(fin, opcode, payload), ...], the rest)."""
    frames, i, end = [], 0, len(data)
    while i + 2 <= end:
        first, second = data[i], data[i + 1]
        n, j = second & 0x7F, i + 2
        if n == 126:
            if j + 2 > end:
                break
            n, j = struct.unpack_from("!H", data, j)[0], j + 2
        elif n == 127:
            if j + 8 > end:
                break
            n, j = struct.unpack_from("!Q", data, j)[0], j + 8
        if second & 0x80:  # a server never masks; skip a key if one came anyway
            j += 4
        if j + n > end:
            break
        frames.append((bool(first & 0x80), first & 0x0F, data[j:j + n]))
        i = j + n
    return frames, data[i:]


class Messages:
    """Reassembles fragmented messages: feed() frames, get whole text messages back."""

    def __init__(self):
        self.parts = []

    def feed(self, fin, opcode, payload):
        """The whole message if this frame ends one, else None (control frames: None)."""
        if opcode in (CLOSE, PING, PONG):
            return None
        self.parts.append(payload)
        if not fin:
            return None
        message, self.parts = b"".join(self.parts), []
        return message


def open_connection(host, port, cookie, timeout=10.0):
    """A socket past the WebSocket upgrade, the Engine.IO open and the Socket.IO connect to
    namespace "/" (the portal then puts it in the live room): (socket, leftover bytes)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall(upgrade_request(host, port, cookie))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the portal closed the connection during the upgrade")
        data += chunk
    head, data = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"no WebSocket upgrade: {head.decode(errors='replace')[:200]}")
    connected, sent_connect, messages = False, False, Messages()
    while not connected:
        frames, data = split_frames(data)
        for fin, opcode, payload in frames:
            message = messages.feed(fin, opcode, payload)
            if message is None:
                continue
            if message.startswith(b"0") and not sent_connect:   # Engine.IO open
                sock.sendall(client_frame("40"))
                sent_connect = True
            elif message.startswith(b"40"):                      # Socket.IO connected
                connected = True
            elif message.startswith(b"44"):                      # connect refused
                raise ConnectionError(f"the portal refused the Socket.IO connection: "
                                      f"{message.decode(errors='replace')[:200]}")
        if not connected:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the portal closed the connection before connecting")
            data += chunk
    return sock, data
