#!/bin/sh
# Healthcheck of docker-compose.yaml's `mosquitto` service: a real round trip through the
# broker. With Node-RED's account (which the ACL lets read and write everything) it publishes
# a fresh token retained at QoS 1, reads it back with a second client, then clears it.
# Passing means: the listener accepts connections, the password file and the ACL work, and
# messages are routed. The topic is under octopus/, which is never stored as a measurement.
set -u

TOPIC=octopus/healthcheck/mosquitto
TOKEN="$(date +%s)-$$"

mqtt() {
    command=$1
    shift
    "$command" -h 127.0.0.1 -p 1883 -u "$MQTT_NODERED_USER" -P "$MQTT_NODERED_PASSWORD" \
        -i "octopus-healthcheck-$$-$command" -q 1 -t "$TOPIC" "$@"
}

mqtt mosquitto_pub -r -m "$TOKEN" || exit 1
received=$(mqtt mosquitto_sub -C 1 -W 5) || received=""
mqtt mosquitto_pub -r -n  # an empty retained message removes the retained token
if [ "$received" != "$TOKEN" ]; then
    echo "mosquitto round trip failed: published '$TOKEN' on $TOPIC, read back '$received'" >&2
    exit 1
fi
echo "mosquitto round trip ok"
