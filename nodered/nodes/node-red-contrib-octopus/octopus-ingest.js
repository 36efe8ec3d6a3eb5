'use strict';
/**
 * octopus-ingest: subscribes to the broker itself (no `mqtt in` before it), stores messages
 * in PostgreSQL in batches and acknowledges each message to the broker only after its batch
 * is committed. The logic lives in lib/broker-ingest.js (consumer, ledger, core); this file
 * only connects it to Node-RED: settings, logs, status, outputs.
 *
 * Output 1: `octopus/live`: what the ingest took, every INGEST_LIVE_MS ahead of the
 *           commit (0: each batch after its commit).
 * Output 2: `octopus/stats/ingest/<worker>` (retained) every 10 s.
 * Input (optional): messages from another source (payload a Buffer), stored the same way;
 * no broker hears about their commit.
 */

const { BrokerIngest } = require('./lib/broker-ingest');
const { IngestCore } = require('./lib/ingest-core');
const { writeItems, loadReceipts, claimClockSlot, releaseClockSlot } = require('./lib/store');
const { toLivePayload } = require('./lib/batch');
const { resolveSettings, leaveGroupOnStop } = require('./lib/ingest-settings');
const { consumerSettings } = require('./lib/broker-config');
const { statsTopic } = require('./lib/topic');

const STATS_INTERVAL_MS = 10000;
const STATUS_INTERVAL_MS = 1000;
const CLOSE_TIMEOUT_MS = 10000; // below Node-RED's 15 s nodeCloseTimeout
// Exclusive by default: Mosquitto 2.0.11 restores a persistent session's ordinary
// subscriptions after a restart but not its shared ones, so a shared subscription loses what
// devices publish between the broker's restart and the ingest's resubscription. Several
// workers need the shared form (INGEST_SUBSCRIPTION, doc/ingest.md).
const DEFAULT_TOPIC = '#';
const SHARED_TOPIC = '$share/octopus-ingest/#';

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
        let health = 'ok'; // 'ok' | 'retrying' | 'full': the database side, for the status

        const coreOptions = {
            ...settings,
            onCommitted: (items) => {
                if (health === 'retrying') {
                    health = 'ok';
                    node.log(`database writes succeed again; ${core().buffered} messages still held`);
                }
            },
            onLive: (items) => {
                node.send([{ topic: 'octopus/live', payload: toLivePayload(items), retain: false }, null]);
            },
            onEvent: (event) => report(event),
        };

        // With a broker: our own MQTT session. Without one (property left empty): input only.
        let ingest = null;
        let inputOnly = null;
        let worker = config.worker || process.env.NODERED_MQTT_CLIENT_ID || 'octopus-ingest';
        let brokerProblem = null;
        let mqttTopic = '';
        let mqttState = 'connecting';
        if (config.broker) {
            const broker = consumerSettings(RED.nodes.getNode(config.broker), { clientId: config.worker });
            if (broker.error) {
                brokerProblem = broker.error;
                node.error(`octopus-ingest: ${broker.error}; nothing is received from the broker`);
            } else {
                const mqtt = {
                    ...broker.settings,
                    topics: [String(config.topic || '').trim() || DEFAULT_TOPIC],
                    staleTopics: [DEFAULT_TOPIC, SHARED_TOPIC],
                    receiveMaximum: settings.receiveMaximum,
                };
                mqtt.staleTopics = mqtt.staleTopics.filter((t) => !mqtt.topics.includes(t));
                worker = mqtt.clientId;
                mqttTopic = mqtt.topics[0];
                ingest = new BrokerIngest({
                    mqtt,
                    core: coreOptions,
                    write: (items, receipt) => writeItems(db.getPool(), items, receipt),
                    loadReceipts: () => loadReceipts(db.getPool(), worker),
                    claimClockSlot: () => claimClockSlot(db.getPool(), worker),
                    releaseClockSlot: () => releaseClockSlot(db.getPool(), worker),
                });
                watchBroker(ingest, mqtt);
            }
        }
        if (!ingest) {
            inputOnly = new IngestCore({ ...coreOptions, write: (items) => writeItems(db.getPool(), items) });
        }
        const core = () => (ingest ? ingest.core : inputOnly);

        function watchBroker(brokerIngest, mqtt) {
            const where = `${mqtt.clientId}@${mqtt.host}:${mqtt.port}`;
            let waitingForDb = false;
            let failedAttempts = 0;
            let redeliveredLogged = 0;
            // After a (re)connection, say how many copies of stored messages the broker sent.
            const redeliveryTimer = setInterval(() => {
                const n = brokerIngest.window.redelivered;
                if (n > redeliveredLogged) {
                    node.log(`the broker sent ${n - redeliveredLogged} copies of messages already taken: not stored again`);
                    redeliveredLogged = n;
                }
            }, 5000);
            redeliveryTimer.unref();
            node.on('close', () => clearInterval(redeliveryTimer));
            brokerIngest.on('receipts', (e) => {
                if (e.error) {
                    mqttState = 'waiting for the database';
                    if (!waitingForDb) {
                        node.warn(`reading this worker's receipts (or claiming its clock slot) from ${db.target} failed (${e.error.message}); ` +
                            'not subscribing until it works (the broker keeps the messages meanwhile), retrying');
                    }
                    waitingForDb = true;
                } else {
                    node.log(`arrival-clock slot ${brokerIngest.clockSlot}; ${e.loaded} messages in this worker's receipts ` +
                        '(stored, acknowledgement not yet confirmed by the broker): their copies will not be stored again; subscribing');
                    waitingForDb = false;
                }
            });
            brokerIngest.on('mqtt', (e) => {
                if (e.type === 'connect') {
                    if (mqttState !== 'connected' && brokerIngest.window.redelivered > redeliveredLogged) {
                        redeliveredLogged = brokerIngest.window.redelivered;
                    }
                    mqttState = 'connected';
                    failedAttempts = 0;
                    node.log(`connected to ${where}, ${e.sessionPresent ? 'session resumed' : 'new session'}; ` +
                        `subscribing to ${mqtt.topics.join(', ')} (receive maximum ${mqtt.receiveMaximum})`);
                } else if (e.type === 'disconnect' && !e.stopping) {
                    const why = e.reason || (e.error && e.error.message) || 'connection closed';
                    mqttState = `broker: ${why}`;
                    if (e.wasConnected) {
                        node.warn(`connection to ${where} lost (${why}); reconnecting. Messages not yet ` +
                            'acknowledged are sent again by the broker and stored once.');
                    } else if (failedAttempts === 0) {
                        node.warn(`cannot connect to ${where} (${why}); retrying with backoff`);
                    }
                    if (!e.wasConnected) failedAttempts += 1;
                } else if (e.type === 'warn') {
                    node.warn(`broker ${where}: ${e.message}`);
                }
            });
        }

        function report(event) {
            switch (event.type) {
            case 'write-failed':
                if (health !== 'full') health = 'retrying';
                node.warn(`writing a batch to ${db.target} failed (${event.error.message}); ` +
                    `retrying in ${event.retryInMs / 1000} s, ${event.buffered} messages held` +
                    (ingest ? ' (the broker keeps the rest)' : ''));
                break;
            case 'buffer-full':
                health = 'full';
                node.error(`ingest buffer full (${event.buffered} messages waiting for the database): ` +
                    (ingest ? 'reconnecting so that the broker sends them again' : 'new messages are dropped until the database catches up'));
                break;
            case 'buffer-ok':
                health = 'retrying';
                node.warn(`ingest buffer below its limit again; ${event.dropped} messages not taken in total`);
                break;
            case 'data-error':
                node.warn(`the database refused a batch of ${event.size} for its data (${event.error.message}); ` +
                    'writing it message by message to find the culprit');
                break;
            case 'after-commit-failed':
                node.error(`after a commit: ${event.error.message}`);
                break;
            case 'live-failed':
                node.error(`publishing on octopus/live: ${event.error.message} (stored all the same)`);
                break;
            case 'dropped-unwritable':
                node.error(`the database refused even a reject for topic ${JSON.stringify(event.item.topic)} ` +
                    `(${event.error.message}): dropped`);
                break;
            default:
            }
        }

        function stats() {
            return { worker, ...(ingest ? ingest.stats() : inputOnly.stats()) };
        }

        let shownStatus = '';
        function showStatus() {
            const s = stats();
            const counts = `stored ${s.stored}, rejected ${s.rejected}`;
            let status = { fill: 'green', shape: 'dot', text: ingest ? `${counts}, in flight ${s.inflight}` : counts };
            if (brokerProblem) {
                status = { fill: 'red', shape: 'ring', text: brokerProblem };
            } else if (ingest && mqttState !== 'connected') {
                status = { fill: 'yellow', shape: 'ring', text: `${counts}; ${mqttState}` };
            } else if (health === 'retrying') {
                status = { fill: 'yellow', shape: 'ring', text: `${counts}; database unavailable, ${s.buffered} held` };
            } else if (health === 'full') {
                status = { fill: 'red', shape: 'dot', text: `${counts}; buffer full, not taken ${s.dropped}` };
            } else if (ingest && ingest.consumer.backpressure) {
                status = { fill: 'yellow', shape: 'dot', text: `${counts}; backpressure: ${s.inflight} in flight, the broker holds the rest` };
            }
            if (status.text !== shownStatus) {
                shownStatus = status.text;
                node.status(status);
            }
        }

        // One retained topic per worker: with one shared topic the retained copy would be
        // whichever worker wrote last. `+`, `#` and `/` cannot sit in one topic level.
        const statsTopicName = statsTopic('ingest', worker);
        function sendStats() {
            node.send([null, { topic: statsTopicName, payload: stats(), retain: true }]);
        }

        let warnedPayloadType = false;
        node.on('input', (msg, send, done) => {
            let payload = msg.payload;
            if (!Buffer.isBuffer(payload)) {
                if (!warnedPayloadType) {
                    warnedPayloadType = true;
                    node.warn('payload is not a Buffer: send the bytes as received so that the ingest decides what is valid UTF-8');
                }
                payload = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload) ?? '');
            }
            // `done` is called when the message's batch is committed.
            core().receive(msg.topic, payload, (err) => done(err));
        });

        showStatus();
        const statusTimer = setInterval(showStatus, STATUS_INTERVAL_MS);
        const statsTimer = setInterval(sendStats, STATS_INTERVAL_MS);
        setImmediate(sendStats);
        if (ingest) ingest.start();

        // A worker leaves the shared subscription when its node is deleted, or on every stop
        // with INGEST_LEAVE_GROUP_ON_STOP=true (a worker being retired): see BrokerIngest.stop.
        const leaveOnStop = leaveGroupOnStop(process.env);
        node.on('close', (removed, done) => {
            clearInterval(statusTimer);
            clearInterval(statsTimer);
            const leave = Boolean(removed) || leaveOnStop;
            const stopped = ingest
                ? ingest.stop(CLOSE_TIMEOUT_MS, { leave })
                : inputOnly.close(CLOSE_TIMEOUT_MS).then((unwritten) => ({ unwritten, left: false }));
            const closed = stopped.then(({ unwritten, left }) => {
                if (unwritten > 0) {
                    node.warn(`stopped with ${unwritten} messages not written to the database` +
                        (ingest ? ' nor acknowledged: the broker sends them again' : ''));
                }
                if (!ingest) return;
                if (left) {
                    node.log(`${worker} left the group ${mqttTopic}: its session is ended, the other workers take every message`);
                } else if (leave) {
                    node.warn(`${worker} could not store everything its session held before stopping: the session ` +
                        'is kept (without its subscription); start this worker again to store the rest');
                } else {
                    node.log(`${worker} stopped; the broker keeps its session and queues its share of messages until it is back`);
                }
            });
            db.holdOpenUntil(closed);
            closed.then(() => done(), () => done());
        });
        node.ingest = ingest; // for tests
        node.core = core();
    }

    RED.nodes.registerType('octopus-ingest', OctopusIngestNode);
};
