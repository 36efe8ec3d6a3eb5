"""Helpers for the portal tests: logging in, inserting data, reading the rendered pages."""
import re
from html.parser import HTMLParser

ADMIN_USER = "admin"
ADMIN_PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path="/login"):
    """The CSRF token a page's form carries."""
    return CSRF_FIELD.search(client.get(path).get_data(as_text=True)).group(1)


def login(client, username=ADMIN_USER, password=ADMIN_PASSWORD, next=None):
    """Submit the login form as a browser would, token included."""
    url = "/login" + (f"?next={next}" if next else "")
    return client.post(url, data={"csrf_token": csrf_token(client), "username": username,
                                  "password": password})


def add_user(app, db, role):
    """A logged-in test client of a new user with `role` (named after it)."""
    from octopus_portal.auth import hasher
    db.execute("INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s)",
               (role, hasher.hash("their password"), role))
    client = app.test_client()
    assert login(client, role, "their password").status_code == 302
    return client


def _columns(rows, width):
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


def ingest(conn, readings=(), statuses=(), rejects=()):
    """Store data as the ingest does, through ingest_batch().

    readings: (site, room, device, attribute, ts, num, txt, unit)
    statuses: (site, room, device, status, ts)
    rejects:  (topic, reason, payload bytes, payload size)
    """
    conn.execute(
        "SELECT ingest_batch(%s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::timestamptz[], %s::float8[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],"
        " %s::text[], %s::text[], %s::bytea[], %s::integer[])",
        [*_columns(readings, 8), *_columns(statuses, 5), *_columns(rejects, 4)])


class TreeParser(HTMLParser):
    """What a page shows per data-key (outside <template>): name, value, unit, ts, status."""

    FIELDS = ("name", "value", "unit", "status")
    VOID = {"input", "meta", "link", "br", "img", "hr"}

    def __init__(self):
        super().__init__()
        self.stack = []  # (tag, key, field) per open element
        self.nodes = {}
        self.in_template = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "template":
            self.in_template += 1
        if tag in self.VOID:
            return
        classes = (attrs.get("class") or "").split()
        field = next((f for f in self.FIELDS if f in classes), None)
        key = attrs.get("data-key")
        if key is not None and not self.in_template:
            self.nodes.setdefault(key, {"testid": attrs.get("data-testid")})
        self.stack.append((tag, key, field))
        node = self.current_node()
        if tag == "time" and node is not None:
            node["ts"] = attrs.get("datetime")

    def handle_endtag(self, tag):
        if tag == "template":
            self.in_template -= 1
        if tag in self.VOID:
            return
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def current_node(self):
        if self.in_template:
            return None
        key = next((k for _, k, _ in reversed(self.stack) if k is not None), None)
        return self.nodes.get(key)

    def handle_data(self, data):
        field = next((f for _, _, f in reversed(self.stack) if f), None)
        node = self.current_node()
        if field and node is not None and field not in node:
            node[field] = data.strip()
        elif field and node is not None:
            node[field] += data.strip()


def tree(html):
    """{data-key: {"testid", "name", "value", "unit", "ts", "status"}} of a rendered page."""
    parser = TreeParser()
    parser.feed(html)
    return parser.nodes
