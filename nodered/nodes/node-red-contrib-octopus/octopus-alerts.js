'use strict';
/**
 * octopus-alerts: evaluates the alert rules of alert_rules on the readings and statuses of
 * octopus/live (from an `mqtt in` node), writes the alerts and their history to PostgreSQL
 * and sends their state and notifications (lib/alerts-service.js, lib/alerts-engine.js).
 * Rules and channels are re-read while it runs: no redeploy for a change. With several
 * Node-RED workers one evaluates (a PostgreSQL lock) and the others stand by.
 *
 * Outputs: 1. MQTT, for an `mqtt out` node: each alert's state, retained, on
 * octopus/alerts/<rule_id>/<site>/<room>/<device>/<attribute>, and the notifications of mqtt
 * channels; 2. e-mail notifications, for the stock `e-mail` node (its To left empty);
 * 3. webhook notifications, for a stock `http request` node (method set by msg.method).
 * Its input may also take octopus/stats/# (lib/alerts-platform.js): the platform's own
 * figures, as readings of octopus/platform/<worker>. The database itself is watched without
 * it (lib/alerts-outage.js): "database unreachable" on
 * octopus/alerts/platform/octopus/platform/database/reachable, notified through the same outputs.
 */

const { AlertService } = require('./lib/alerts-service');
const { resolveAlertSettings, engineSettings } = require('./lib/alerts-settings');
const { PlatformReadings } = require('./lib/alerts-platform');
const { statusOnChange, warnOnceOn, settleWithin } = require('./lib/node-lifecycle');

const STATUS_INTERVAL_MS = 1000;
const CLOSE_TIMEOUT_MS = 5000; // well below Node-RED's 15 s nodeCloseTimeout

module.exports = function registerOctopusAlerts(RED) {
    function OctopusAlertsNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const db = RED.nodes.getNode(config.db);
        if (!db || typeof db.getPool !== 'function') {
            node.status({ fill: 'red', shape: 'dot', text: 'no database configured' });
            node.error('octopus-alerts needs an octopus-db config node: the rules and alerts are there; nothing is evaluated');
            return;
        }
        const { settings, problems } = resolveAlertSettings(config, process.env);
        for (const p of problems) node.error(`octopus-alerts settings: ${p}`);
        node.log(`rules re-read every ${settings.refreshS} s; at most one notification per ${settings.notifyMinIntervalS} s ` +
            `per alert and channel; flapping: ${settings.flapCount} raises in ${settings.flapWindowS} s; ` +
            `"database unreachable" after ${settings.dbDownAfterS} s without an answer`);

        const service = new AlertService({
            getPool: () => db.getPool(),
            settings: { refreshMs: settings.refreshS * 1000, ...engineSettings(settings) },
            publish: (output, msg) => {
                const msgs = [null, null, null];
                msgs[output] = msg;
                node.send(msgs);
            },
            onEvent: (event) => report(event),
        });

        function report(event) {
            switch (event.type) {
            case 'state':
                if (event.state === 'evaluating') {
                    warnOnce.reset(); // the next outage is said again
                    node.log('this worker holds the alerts lock: evaluating the rules');
                }
                else if (event.state === 'standby') node.log('another worker holds the alerts lock: standing by');
                else if (event.state === 'database unreachable') {
                    warnOnce(`cannot reach ${db.target} (${event.error && event.error.message}); ` +
                        `no alerts evaluated, retrying every ${settings.refreshS} s`);
                }
                break;
            case 'lock-lost':
                node.warn(`the connection holding the alerts lock failed (${event.error.message}): evaluation stopped ` +
                    'until it is back, then starts again from the open alerts');
                break;
            case 'database-alert':
                if (event.state === 'raised') {
                    node.warn(`raised the alert "database unreachable" without the database (${event.alert.message}); ` +
                        `${event.notified} channel${event.notified === 1 ? '' : 's'} notified; it clears when the database answers again`);
                } else if (event.error) {
                    node.warn(`the database answers again: "database unreachable" cleared, but recording the outage failed ` +
                        `(${event.error.message}): it is not in the alerts' history`);
                } else {
                    node.log(`the database answers again: "database unreachable" cleared` +
                        `${event.recorded ? `, the outage recorded as alert ${event.alert.id}` : ' (recorded by the worker holding the lock)'}`);
                }
                break;
            case 'bad-rule':
                node.warn(`alert rule ${event.rule.id} "${event.rule.name}" is not evaluated: ${event.problem}`);
                break;
            case 'flapping':
                node.log(`alert ${event.alert.id} (${event.rule.name}, ${event.alert.site}/${event.alert.room}/` +
                    `${event.alert.device}/${event.alert.attribute}) is flapping: its notifications are held back`);
                break;
            case 'write-failed':
                warnOnce(`writing an alert failed (${event.error.message}); its state is kept in memory, ` +
                    'the write is not retried');
                break;
            default: // refresh-failed: a refused statement, e.g. the migration not applied yet
                warnOnce(`reading alert_rules failed (${event.error && event.error.message}); ` +
                    `retrying every ${settings.refreshS} s`);
            }
        }

        const warnOnce = warnOnceOn(node);
        const setStatus = statusOnChange(node);
        function showStatus() {
            const s = service.summary();
            let status;
            if (s.state === 'evaluating') {
                const text = `${s.rules} rule${s.rules === 1 ? '' : 's'}, ${s.active} active alert${s.active === 1 ? '' : 's'}`;
                status = { fill: s.active ? 'yellow' : 'green', shape: 'dot', text };
            } else if (s.state === 'standby') {
                status = { fill: 'grey', shape: 'ring', text: 'standby' };
            } else if (s.state === 'database unreachable') {
                status = { fill: 'red', shape: s.databaseAlert ? 'dot' : 'ring', text: `database unreachable${s.databaseAlert ? ': alert raised' : ''}` };
            } else if (s.state === 'failing') {
                status = { fill: 'red', shape: 'ring', text: 'cannot read the rules (see the log)' };
            } else {
                status = { fill: 'grey', shape: 'ring', text: s.state };
            }
            setStatus(status);
        }

        const platform = new PlatformReadings();
        let warnedInput = false;
        node.on('input', (msg, send, done) => {
            // the workers' statistics, if the flow feeds them in too: readings of octopus/platform/<worker>
            const readings = platform.fromStats(msg.topic, msg.payload, Date.now());
            if (!service.input(readings ? { readings, statuses: [] } : msg.payload) && !warnedInput) {
                warnedInput = true; // once: a miswired flow would say it for every message
                node.warn(`a message on "${msg.topic}" is not an octopus/live payload ({readings, statuses}); ignored`);
            }
            done();
        });

        service.start();
        showStatus();
        const statusTimer = setInterval(showStatus, STATUS_INTERVAL_MS);
        node.on('close', (done) => {
            clearInterval(statusTimer);
            // Bounded: a write still running must not hold up a redeploy.
            const bounded = settleWithin(service.stop(), CLOSE_TIMEOUT_MS);
            db.holdOpenUntil(bounded); // the lock connection is handed back before the pool ends
            bounded.then(() => done(), () => done());
        });
        node.service = service; // for tests
    }
    RED.nodes.registerType('octopus-alerts', OctopusAlertsNode);
};
