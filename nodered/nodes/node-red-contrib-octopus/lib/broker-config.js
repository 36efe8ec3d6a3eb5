'use strict';
/**
 * Where the ingest connects, read from a Node-RED `mqtt-broker` config node (the flow's
 * `octopus-broker`): host, port, credentials, TLS. The config node is only read, never
 * used to connect: it keeps its own connection (for `mqtt out`) under its own client id.
 * Plain module: it takes the config node as an object.
 */

const os = require('os');

const CLIENT_ID_SUFFIX = '-ingest';
const TLS_OPTIONS = ['ca', 'cert', 'key', 'passphrase', 'rejectUnauthorized', 'servername', 'alpnProtocols'];

/**
 * The consumer's connection settings from config node `broker`:
 * {settings: {host, port, username, password, tls, keepaliveS, clientId}} or {error}.
 * The client id is the broker node's (NODERED_MQTT_CLIENT_ID) + "-ingest", unless
 * `clientId` is given: one per worker, never the broker node's own.
 */
function consumerSettings(broker, { clientId = '', env = process.env } = {}) {
    if (!broker) return { error: 'no MQTT broker configured (an mqtt-broker config node)' };
    let host = String(broker.broker || '').trim() || 'localhost';
    let port = Number(broker.port) || 0;
    let useTls = broker.usetls === true || broker.usetls === 'true';
    if (host.includes('://')) {
        let url;
        try {
            url = new URL(host);
        } catch (e) {
            return { error: `broker address ${JSON.stringify(host)} is not a URL` };
        }
        if (!['mqtt:', 'tcp:', 'mqtts:', 'ssl:', 'tls:'].includes(url.protocol)) {
            return { error: `broker address ${host}: the ingest speaks MQTT over TCP or TLS, not ${url.protocol}//` };
        }
        useTls = useTls || ['mqtts:', 'ssl:', 'tls:'].includes(url.protocol);
        host = url.hostname.replace(/^\[|\]$/g, '');
        port = Number(url.port) || port;
    }
    if (!port) port = useTls ? 8883 : 1883;
    const credentials = broker.credentials || {};
    let tls = null;
    if (useTls) {
        tls = {};
        const options = broker.options || {};
        for (const k of TLS_OPTIONS) if (options[k] !== undefined) tls[k] = options[k];
    }
    const base = broker.clientid || env.NODERED_MQTT_CLIENT_ID || `octopus-nodered-${os.hostname()}`;
    return {
        settings: {
            host,
            port,
            username: credentials.user || broker.username || undefined,
            password: credentials.password || broker.password || undefined,
            tls,
            keepaliveS: Number(broker.keepalive) || 60,
            clientId: String(clientId || '').trim() || `${base}${CLIENT_ID_SUFFIX}`,
        },
    };
}

module.exports = { consumerSettings, CLIENT_ID_SUFFIX };
