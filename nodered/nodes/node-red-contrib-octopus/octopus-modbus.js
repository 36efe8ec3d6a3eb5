'use strict';
/**
 * octopus-modbus: polls the Modbus TCP devices listed in modbus_devices (lib/modbus-fleet.js)
 * and sends what it reads as MQTT messages on the topic contract, for an `mqtt out` node.
 * Devices and profiles are re-read while it runs: no redeploy for a change. With several
 * Node-RED workers one polls (a PostgreSQL lock) and the others stand by.
 *
 * Output: readings `<site>/<room>/<device>/<attribute>` (JSON {value, ts, unit}, QoS 1),
 * availability `<site>/<room>/<device>/status` (retained), and every MODBUS_STATS_INTERVAL_S
 * `octopus/stats/modbus/<worker>` (retained). Each message carries its own qos and retain.
 */

const { ModbusFleet } = require('./lib/modbus-fleet');
const { ProfileStore } = require('./lib/modbus-profile-store');
const { resolveModbusSettings, fleetSettings } = require('./lib/modbus-settings');
const { statusOnChange, warnOnceOn, settleWithin } = require('./lib/node-lifecycle');

const STATUS_INTERVAL_MS = 1000;
const CLOSE_TIMEOUT_MS = 5000; // well below Node-RED's 15 s nodeCloseTimeout

module.exports = function registerOctopusModbus(RED) {
    function OctopusModbusNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const db = RED.nodes.getNode(config.db);
        if (!db || typeof db.getPool !== 'function') {
            node.status({ fill: 'red', shape: 'dot', text: 'no database configured' });
            node.error('octopus-modbus needs an octopus-db config node: it reads its devices there; nothing is polled');
            return;
        }
        const { settings, problems } = resolveModbusSettings(config, process.env);
        for (const p of problems) node.error(`octopus-modbus settings: ${p}`);
        node.log(`worker ${settings.worker}; profiles in ${settings.profilesDir}; devices re-read every ${settings.refreshS} s`);

        const warnedValues = new Set();
        const fleet = new ModbusFleet({
            getPool: () => db.getPool(),
            profiles: new ProfileStore(settings.profilesDir),
            worker: settings.worker,
            settings: fleetSettings(settings),
            publish: (msgs) => { if (msgs.length) node.send([msgs]); },
            onEvent: (event) => report(event),
        });

        function report(event) {
            const device = event.device ? `${event.device.site}/${event.device.room}/${event.device.name}` : '';
            switch (event.type) {
            case 'state':
                if (event.state === 'polling') node.log('this worker holds the polling lock: polling');
                else if (event.state === 'standby') node.log('another worker holds the polling lock: standing by');
                else if (event.state === 'database unreachable') {
                    node.warn(`cannot read the Modbus devices from ${db.target} (${event.error && event.error.message}); ` +
                        `not polling, retrying every ${settings.refreshS} s`);
                }
                break;
            case 'lock-lost':
                node.warn(`the connection holding the polling lock failed (${event.error.message}): polling stopped until it is back`);
                break;
            case 'bad-profile':
                node.warn(`device ${device} (id ${event.device.id}) is not polled: ${event.problem}`);
                break;
            case 'bad-value':
                // once per attribute: a float that is not a number stays so at every poll
                if (!warnedValues.has(`${device}/${event.attribute}`)) {
                    warnedValues.add(`${device}/${event.attribute}`);
                    node.warn(`${device}/${event.attribute}: the device sent a float that is not finite (NaN or ±Inf); not published`);
                }
                break;
            case 'stats-failed':
                warnOnce(`writing modbus_poll_stats failed (${event.error.message}); retrying every ${settings.statsIntervalS} s`);
                break;
            default: // refresh-failed: a refused statement, e.g. the migration not applied yet
                warnOnce(`reading modbus_devices failed (${event.error && event.error.message}); ` +
                    `polling goes on with the devices known, retrying every ${settings.refreshS} s`);
            }
        }

        const warnOnce = warnOnceOn(node);
        const setStatus = statusOnChange(node);
        function showStatus() {
            const s = fleet.summary();
            let status;
            if (s.state === 'polling') {
                const parts = [`polling ${s.devices} device${s.devices === 1 ? '' : 's'}`];
                if (s.offline) parts.push(`${s.offline} offline`);
                if (s.badProfiles) parts.push(`${s.badProfiles} with a bad profile`);
                const fill = s.badProfiles || s.offline ? 'yellow' : 'green';
                status = { fill, shape: 'dot', text: parts.join(', ') };
            } else if (s.state === 'standby') {
                status = { fill: 'grey', shape: 'ring', text: 'standby' };
            } else if (s.state === 'database unreachable') {
                status = { fill: 'red', shape: 'ring', text: 'database unreachable' };
            } else {
                status = { fill: 'grey', shape: 'ring', text: s.state };
            }
            setStatus(status);
        }

        fleet.start();
        showStatus();
        const statusTimer = setInterval(showStatus, STATUS_INTERVAL_MS);
        node.on('close', (done) => {
            clearInterval(statusTimer);
            // Bounded: a poll or a statement still running must not hold up a redeploy.
            const bounded = settleWithin(fleet.stop(), CLOSE_TIMEOUT_MS);
            db.holdOpenUntil(bounded); // the lock connection is handed back before the pool ends
            bounded.then(() => done(), () => done());
        });
        node.fleet = fleet; // for tests
    }
    RED.nodes.registerType('octopus-modbus', OctopusModbusNode);
};
