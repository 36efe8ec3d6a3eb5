'use strict';
/**
 * octopus-ingest: takes messages straight from an `mqtt in` node (payload as a Buffer),
 * stores them in PostgreSQL in batches and reports what it committed. The logic lives in
 * lib/ingest-core.js; this file only connects it to Node-RED.
 *
 * Output 1: one `octopus/live` message per committed batch.
 * Output 2: `octopus/stats/ingest` (retained) every 10 s.
 */

const os = require('os');
const { IngestCore } = require('./lib/ingest-core');
const { writeItems } = require('./lib/store');
const { toLivePayload } = require('./lib/batch');
const { resolveSettings } = require('./lib/ingest-settings');

const STATS_INTERVAL_MS = 10000;
const STATUS_INTERVAL_MS = 1000;
const CLOSE_TIMEOUT_MS = 10000; // below Node-RED's 15 s nodeCloseTimeout

module.exports = function registerOctopusIngest(RED) {
    function OctopusIngestNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const db = RED.nodes.getNode(config.db);
        if (!db || typeof db.getPool !== 'function') {
            node.status({ fill: 'red', shape: 'dot', text: 'no database configured' });
            node.error('octopus-ingest needs an octopus-db config node: nothing will be stored');
            node.on('input', (msg, send, done) => done());
            return;
        }

        const { settings, problems } = resolveSettings(config, process.env);
        for (const p of problems) node.error(`octopus-ingest settings: ${p}`);
        const worker = config.worker || process.env.NODERED_MQTT_CLIENT_ID || os.hostname();
        let health = 'ok'; // 'ok' | 'retrying' | 'full': what the status shows besides counts

        const core = new IngestCore({
            ...settings,
            write: (items) => writeItems(db.getPool(), items),
            onCommitted: (items) => {
                if (health === 'retrying') {
                    health = 'ok';
                    node.log(`database writes succeed again; ${core.buffered} messages still buffered`);
                }
                node.send([{ topic: 'octopus/live', payload: toLivePayload(items), retain: false }, null]);
            },
            onEvent: (event) => report(event),
        });

        function report(event) {
            switch (event.type) {
            case 'write-failed':
                if (health !== 'full') health = 'retrying';
                node.warn(`writing a batch to ${db.target} failed (${event.error.message}); ` +
                    `retrying in ${event.retryInMs / 1000} s, ${event.buffered} messages buffered`);
                break;
            case 'buffer-full':
                health = 'full';
                node.error(`ingest buffer full (${event.buffered} messages waiting for the database): ` +
                    'new messages are dropped until the database catches up');
                break;
            case 'buffer-ok':
                health = 'retrying';
                node.warn(`ingest buffer below its limit again; ${event.dropped} messages dropped in total`);
                break;
            case 'data-error':
                node.warn(`the database refused a batch of ${event.size} for its data (${event.error.message}); ` +
                    'writing it message by message to find the culprit');
                break;
            case 'after-commit-failed':
                node.error(`after a commit: ${event.error.message}`);
                break;
            case 'dropped-unwritable':
                node.error(`the database refused even a reject for topic ${JSON.stringify(event.item.topic)} ` +
                    `(${event.error.message}): dropped`);
                break;
            default:
            }
        }

        let shownStatus = '';
        function showStatus() {
            const c = core.counters;
            const counts = `stored ${c.stored}, rejected ${c.rejected}`;
            let status = { fill: 'green', shape: 'dot', text: counts };
            if (health === 'retrying') {
                status = { fill: 'yellow', shape: 'ring', text: `${counts}; database unavailable, ${core.buffered} buffered` };
            } else if (health === 'full') {
                status = { fill: 'red', shape: 'dot', text: `${counts}; buffer full, dropped ${c.dropped}` };
            }
            if (status.text !== shownStatus) {
                shownStatus = status.text;
                node.status(status);
            }
        }

        function sendStats() {
            node.send([null, { topic: 'octopus/stats/ingest', payload: { worker, ...core.stats() }, retain: true }]);
        }

        let warnedPayloadType = false;
        node.on('input', (msg, send, done) => {
            let payload = msg.payload;
            if (!Buffer.isBuffer(payload)) {
                if (!warnedPayloadType) {
                    warnedPayloadType = true;
                    node.warn('payload is not a Buffer: set the mqtt in node\'s output to "a Buffer" so bytes reach the ingest unchanged');
                }
                payload = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload) ?? '');
            }
            // `done` is called when the message's batch is committed. A dropped message (buffer
            // full, stopping) is counted and logged once per episode, not once per message.
            core.receive(msg.topic, payload, () => done());
        });

        showStatus();
        const statusTimer = setInterval(showStatus, STATUS_INTERVAL_MS);
        const statsTimer = setInterval(sendStats, STATS_INTERVAL_MS);
        setImmediate(sendStats);

        node.on('close', (done) => {
            clearInterval(statusTimer);
            clearInterval(statsTimer);
            const closed = core.close(CLOSE_TIMEOUT_MS).then((unwritten) => {
                if (unwritten > 0) node.warn(`stopped with ${unwritten} messages not written to the database`);
            });
            db.holdOpenUntil(closed);
            closed.then(() => done());
        });
        node.core = core; // for tests
    }

    RED.nodes.registerType('octopus-ingest', OctopusIngestNode);
};
