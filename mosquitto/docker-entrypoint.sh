#!/bin/sh
# Entrypoint of docker-compose.yaml's `mosquitto` service (eclipse-mosquitto image, run as root).
#
# The repository's mosquitto/ folder is mounted read-only at /octopus/mosquitto. At every
# start this script
#   1. installs mosquitto.conf and the ACL where the broker expects them (the paths that
#      mosquitto.conf names), owned by the broker's account and not world-readable, which
#      Mosquitto 2.0.16+ warns about and future versions refuse;
#   2. generates the password file, which is never committed, from the platform's accounts in
#      the environment (.env): plain `user:password` lines hashed in place by mosquitto_passwd;
#   3. starts the command (Mosquitto, which drops from root to its `mosquitto` account).
# Device accounts are not kept across restarts yet: the file holds the platform's accounts only,
# as in the native launcher (launcher/mosquitto.py).
set -eu

SOURCE=/octopus/mosquitto
CONF=/mosquitto/config/mosquitto.conf

fail() {
    echo "octopus mosquitto: $*" >&2
    exit 1
}

# The last value of a `key value` line of mosquitto.conf.
setting() {
    sed -n "s/^$1[[:space:]][[:space:]]*//p" "$CONF" | tail -n 1
}

umask 077
cp "$SOURCE/mosquitto.conf" "$CONF"
chmod 0644 "$CONF"
PASSWORD_FILE=$(setting password_file)
ACL_FILE=$(setting acl_file)
[ -n "$PASSWORD_FILE" ] || fail "mosquitto.conf names no password_file"
[ -n "$ACL_FILE" ] || fail "mosquitto.conf names no acl_file"
cp "$SOURCE/acl" "$ACL_FILE"

new="$PASSWORD_FILE.new"
: >"$new"
for account in NODERED PORTAL SIMULATOR; do
    eval "user=\${MQTT_${account}_USER:-} password=\${MQTT_${account}_PASSWORD:-}"
    [ -n "$user" ] || fail "MQTT_${account}_USER is empty: set it in .env"
    [ -n "$password" ] || fail "MQTT_${account}_PASSWORD is empty: set it in .env (./octopus up generates one)"
    printf '%s:%s\n' "$user" "$password" >>"$new"
done
mosquitto_passwd -U "$new" || fail "mosquitto_passwd could not hash the password file"
mv -f "$new" "$PASSWORD_FILE"

if [ "$(id -u)" = 0 ]; then
    chown mosquitto:mosquitto "$PASSWORD_FILE" "$ACL_FILE"
    chown -R mosquitto:mosquitto /mosquitto/data
fi
echo "octopus mosquitto: password file $PASSWORD_FILE written with 3 accounts"

# The broker needs none of the passwords; the healthcheck gets its own copy of the
# environment from the container's configuration.
unset user password MQTT_NODERED_PASSWORD MQTT_PORTAL_PASSWORD MQTT_SIMULATOR_PASSWORD
exec "$@"
