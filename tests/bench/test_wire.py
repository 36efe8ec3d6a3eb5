"""The load generator's hand-encoded MQTT packets parse back as MQTT says they should."""
import pytest

from bench import wire


@pytest.mark.parametrize("n, encoded", [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"),
                                        (16_383, b"\xff\x7f"), (2_097_152, b"\x80\x80\x80\x01")])
def test_remaining_length_is_mqtts_varint(n, encoded):
    assert wire.remaining_length(n) == encoded


def test_publish_round_trips_through_the_subscribers_parser():
    stream = b"".join(wire.publish_qos1(f"bench/r/d/a{i}", str(i).encode(), i + 1) for i in range(3))
    payloads, acks, rest = wire.split_publishes(stream + stream[:5])
    assert payloads == [b"0", b"1", b"2"]
    assert acks == b"\x40\x02\x00\x01" + b"\x40\x02\x00\x02" + b"\x40\x02\x00\x03"
    assert rest == stream[:5]   # a packet cut short waits for the next read


def test_a_long_publish_uses_a_two_byte_length_and_still_parses():
    packet = wire.publish_qos1("bench/r/d/a", b"7" * 300, 9)
    assert packet[1] & 0x80
    assert wire.split_publishes(packet)[0] == [b"7" * 300]


def test_qos0_publishes_and_other_packets_need_no_acknowledgement():
    qos0 = b"\x30" + wire.remaining_length(7) + wire.utf8_field("a/b") + b"42"
    suback = b"\x90\x03\x00\x01\x01"
    payloads, acks, rest = wire.split_publishes(suback + qos0)
    assert (payloads, acks, rest) == ([b"42"], b"", b"")


def test_pubacks_are_counted_by_size_and_anything_else_refused():
    assert wire.count_pubacks(b"\x40\x02\x00\x01" * 3 + b"\x40") == (3, b"\x40")
    with pytest.raises(ValueError):
        wire.count_pubacks(b"\x40\x02\x00\x01\xe0\x00\x00\x00")


def test_connect_carries_the_account_and_connack_is_read():
    packet = wire.connect_packet("dev1", "user", "secret")
    assert packet[0] == 0x10 and b"MQTT\x04\xc2" in packet
    assert packet.endswith(b"\x00\x04user\x00\x06secret")
    assert wire.connack_code(b"\x20\x02\x00\x05") == 5
    with pytest.raises(ValueError):
        wire.connack_code(b"\x40\x02\x00\x01")
