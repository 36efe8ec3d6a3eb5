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
#   3. copies the TLS certificate, key and CA from the certificates volume (/octopus/tls,
#      read-only, written by the one-shot `certificates` service) to the paths mosquitto.conf
#      names, owned by the broker: Mosquitto 2.0 reads them after dropping root;
#   4. applies MQTT_TLS_REQUIRE_CLIENT_CERT (mutual TLS) to the TLS listeners, and points the
#      dynamic security plugin at this system's copy when it is not at the image's path;
#   5. creates the dynamic security plugin's file in the data volume when it is missing (it
#      holds the device accounts the portal provisions, so it is never overwritten);
#   6. starts the command (Mosquitto, which drops from root to its `mosquitto` account).
# The platform's accounts are rewritten at every start, as in the native launcher
# (launcher/mosquitto.py); device accounts live in the dynamic security file.
set -eu

SOURCE=/octopus/mosquitto
TLS_SOURCE=/octopus/tls
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
accounts="NODERED PORTAL SIMULATOR"
# the shared enrolment login exists only while devices may ask for an account
case "${MQTT_ENROLMENT:-false}" in
    true|yes|1|on) accounts="$accounts ENROL" ;;
esac
for account in $accounts; do
    eval "user=\${MQTT_${account}_USER:-} password=\${MQTT_${account}_PASSWORD:-}"
    [ -n "$user" ] || fail "MQTT_${account}_USER is empty: set it in .env"
    [ -n "$password" ] || fail "MQTT_${account}_PASSWORD is empty: set it in .env (./octopus up generates one)"
    printf '%s:%s\n' "$user" "$password" >>"$new"
done
mosquitto_passwd -U "$new" || fail "mosquitto_passwd could not hash the password file"
mv -f "$new" "$PASSWORD_FILE"

CERTFILE=$(setting certfile)
KEYFILE=$(setting keyfile)
CAFILE=$(setting cafile)
[ -n "$CERTFILE" ] && [ -n "$KEYFILE" ] && [ -n "$CAFILE" ] ||
    fail "mosquitto.conf names no certfile, keyfile or cafile"
for name in server.crt server.key ca.crt; do
    [ -s "$TLS_SOURCE/$name" ] ||
        fail "$TLS_SOURCE/$name is missing: the certificates service writes it" \
            "(docker compose up runs it first)"
done
for folder in "$(dirname "$CERTFILE")" "$(dirname "$KEYFILE")" "$(dirname "$CAFILE")"; do
    mkdir -p "$folder"
    chmod 0755 "$folder"  # the broker, no longer root, must reach the files
done
cp "$TLS_SOURCE/server.crt" "$CERTFILE"
cp "$TLS_SOURCE/server.key" "$KEYFILE"
cp "$TLS_SOURCE/ca.crt" "$CAFILE"
chmod 0644 "$CERTFILE" "$CAFILE"
chmod 0600 "$KEYFILE"

case "${MQTT_TLS_REQUIRE_CLIENT_CERT:-false}" in
    true|TRUE|True|yes|1|on)
        sed -i 's/^require_certificate false$/require_certificate true/' "$CONF"
        echo "octopus mosquitto: mutual TLS: TLS clients need a client certificate" ;;
    false|FALSE|False|no|0|off|"") ;;
    *) fail "MQTT_TLS_REQUIRE_CLIENT_CERT=$MQTT_TLS_REQUIRE_CLIENT_CERT: expected true or false" ;;
esac

PLUGIN=$(setting plugin)
if [ -n "$PLUGIN" ] && [ ! -f "$PLUGIN" ]; then
    for candidate in /usr/lib/*/mosquitto_dynamic_security.so \
                     /usr/local/lib/mosquitto_dynamic_security.so; do
        if [ -f "$candidate" ]; then
            sed -i "s|^plugin $PLUGIN\$|plugin $candidate|" "$CONF"
            PLUGIN=$candidate
            break
        fi
    done
    [ -f "$PLUGIN" ] || fail "the dynamic security plugin $PLUGIN is not in this image"
fi
DYNSEC_FILE=$(setting plugin_opt_config_file)
[ -n "$DYNSEC_FILE" ] || fail "mosquitto.conf names no plugin_opt_config_file"
if [ ! -f "$DYNSEC_FILE" ]; then
    # no device accounts yet; a client the plugin knows may do only what its roles grant,
    # receiving included (the same text as launcher/mosquitto.py's DYNSEC_EMPTY, which says why)
    printf '%s%s\n' \
        '{"defaultACLAccess":{"publishClientSend":false,"publishClientReceive":false,' \
        '"subscribe":false,"unsubscribe":true},"clients":[],"groups":[],"roles":[]}' \
        >"$DYNSEC_FILE"
    echo "octopus mosquitto: created $DYNSEC_FILE (no device accounts yet)"
else
    # a file from an older version allowed receiving by default: close it (only the default
    # has this key with a bare true; role entries name it in "acltype")
    sed -i 's/"publishClientReceive":[[:space:]]*true/"publishClientReceive":false/' "$DYNSEC_FILE"
fi

if [ "$(id -u)" = 0 ]; then
    chown mosquitto:mosquitto "$PASSWORD_FILE" "$ACL_FILE" "$CERTFILE" "$KEYFILE" "$CAFILE"
    chown -R mosquitto:mosquitto /mosquitto/data
fi
echo "octopus mosquitto: password file $PASSWORD_FILE written with 3 accounts"

# The broker needs none of the passwords; the healthcheck gets its own copy of the
# environment from the container's configuration.
unset user password MQTT_NODERED_PASSWORD MQTT_PORTAL_PASSWORD MQTT_SIMULATOR_PASSWORD MQTT_ENROL_PASSWORD
exec "$@"
