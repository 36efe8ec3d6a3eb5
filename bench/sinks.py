"""Where a scenario's messages end up, and how the benchmark sees them arrive: a discarding
MQTT subscriber (scenario a) or a table in PostgreSQL (b, c)."""
import threading
import time

import psycopg
from psycopg import sql

from . import wire
from .measure import SequenceTally

PROBE = -1   # the warm-up message's value: never a sequence number


class SubscriberSink:
    """A discarding subscriber at QoS 1 on a shared subscription, like the ingest: it parses
    each PUBLISH, counts its sequence number and acknowledges it (one write per read), in a
    thread of this process. As cheap as a consumer gets: the baseline is the broker's."""

    def __init__(self, stack, n, topic="$share/bench-sink/bench/#"):
        host, port = stack.mqtt
        user, password = stack.account("NODERED")   # the account allowed to read device topics
        self.tally = SequenceTally(n)
        self.last_arrival = None
        self.probed = False
        self.error = None
        self.sock = wire.open_session(host, port, "bench-sink", user, password)
        self.sock.settimeout(None)
        self.sock.sendall(wire.subscribe_packet(topic, qos=1))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    pids = ()            # a thread of the benchmark's own process ("bench (counting)")
    excluded_pids = ()

    def _read(self):
        rest, tally = b"", self.tally
        try:
            while True:
                data = self.sock.recv(1 << 18)
                if not data:
                    return
                payloads, acks, rest = wire.split_publishes(rest + data if rest else data)
                if acks:
                    self.sock.sendall(acks)
                for payload in payloads:
                    seq = int(payload)
                    if seq == PROBE:
                        self.probed = True
                    else:
                        tally.add(seq)
                if payloads:
                    self.last_arrival = time.monotonic()
        except (OSError, ValueError) as exc:
            self.error = exc

    def progress(self):
        """(messages received so far, monotonic time of the last one)."""
        return self.tally.received, self.last_arrival

    def final(self):
        """(received, distinct): every copy, and the distinct sequence numbers among them."""
        return self.tally.received, self.tally.distinct

    def close(self):
        try:
            self.sock.sendall(wire.DISCONNECT)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)


class TableSink:
    """A table that a Node-RED flow writes the sequence numbers into (column `column`),
    polled by one connection whose own backend is left out of the CPU figures."""

    POLL_S = 0.25   # a count(*) over 200,000 rows costs a few ms: ~2 % of a core at this rate

    def __init__(self, stack, n, table, column):
        self.n = n
        names = {"table": sql.Identifier(table), "column": sql.Identifier(column)}
        self.probe_sql, self.count_sql, self.final_sql = (sql.SQL(query).format(**names) for query in (
            "SELECT EXISTS (SELECT 1 FROM {table} WHERE {column} = %s)",
            "SELECT count(*) FROM {table} WHERE {column} >= 1",
            "SELECT count(*), count(DISTINCT {column}) FROM {table}"
            " WHERE {column} BETWEEN 1 AND %s"))
        config = stack.config
        self.conn = psycopg.connect(host=config["PGHOST"], port=config["PGPORT"],
                                    dbname=config["PGDATABASE"], user=config["PGUSER"],
                                    password=config["PGPASSWORD"], autocommit=True,
                                    application_name="bench-poller")
        self.backend_pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.count, self.last_change, self.polled = 0, None, 0.0

    @property
    def excluded_pids(self):
        return (self.backend_pid,)

    pids = ()

    @property
    def probed(self):
        return self.conn.execute(self.probe_sql, (PROBE,)).fetchone()[0]

    def progress(self):
        """(rows stored so far, monotonic time of the poll that first saw the last ones)."""
        now = time.monotonic()
        if now - self.polled >= self.POLL_S:
            self.polled = now
            count = self.conn.execute(self.count_sql).fetchone()[0]
            if count != self.count:
                self.count, self.last_change = count, now
        return self.count, self.last_change

    def next_xid(self):
        """The next transaction id PostgreSQL will hand out (reading it assigns none): the
        difference between two readings is the number of ids taken in between: one per writing
        transaction, and one more per subtransaction that writes."""
        return self.conn.execute("SELECT txid_snapshot_xmax(txid_current_snapshot())").fetchone()[0]

    def final(self):
        return tuple(self.conn.execute(self.final_sql, (self.n,)).fetchone())

    def close(self):
        self.conn.close()
