'use strict';
/**
 * octopus-maintenance: keeps the database in shape on a timer (lib/maintenance.js): per-minute
 * rollups, partitions ahead of time, retention of readings, rollups and rejects. Several
 * Node-RED workers may each run one; the database lets one run at a time and the others skip.
 *
 * Output: run_maintenance()'s result after each run that did something.
 */

const { resolveMaintenanceSettings, runMaintenance, describeRun } = require('./lib/maintenance');
const { schedule } = require('./lib/schedule');

module.exports = function registerOctopusMaintenance(RED) {
    function OctopusMaintenanceNode(config) {
        RED.nodes.createNode(this, config);
        const node = this;
        const db = RED.nodes.getNode(config.db);
        if (!db || typeof db.getPool !== 'function') {
            node.status({ fill: 'red', shape: 'dot', text: 'no database configured' });
            node.error('octopus-maintenance needs an octopus-db config node: no rollups, no retention');
            return;
        }
        const { settings, problems } = resolveMaintenanceSettings(config, process.env);
        for (const p of problems) node.error(`octopus-maintenance settings: ${p}`);
        const kept = (days) => (days ? `${days} days` : 'for ever');
        node.log(`every ${settings.intervalS} s; raw readings kept ${kept(settings.rawDays)}, ` +
            `rollups ${kept(settings.rollupDays)}, rejects ${kept(settings.rejectDays)}`);

        let failing = false;
        const job = schedule(() => runMaintenance(db.getPool(), settings), settings.intervalS * 1000, {
            onResult: (result, ms) => {
                if (failing) node.log('database maintenance runs again');
                failing = false;
                node.status({ fill: 'green', shape: 'dot', text: `${describeRun(result)} (${ms} ms)` });
                const dropped = (result && result.partitions_dropped) || [];
                if (dropped.length) node.log(`retention: dropped ${dropped.join(', ')}`);
                const rejectsGone = (result && result.rejects_deleted) || 0;
                if (rejectsGone) node.log(`retention: deleted ${rejectsGone} rejects`);
                if (result && !result.skipped && (result.refreshed_minutes || result.partitions_made || dropped.length || rejectsGone)) {
                    node.send({ topic: 'octopus/maintenance', payload: result });
                }
            },
            onError: (err) => {
                // Logged once per outage, not every tick; rollups catch up when it ends.
                if (!failing) node.warn(`database maintenance failed (${err.message}); retrying every ${settings.intervalS} s`);
                failing = true;
                node.status({ fill: 'yellow', shape: 'ring', text: `failing: ${err.message}` });
            },
        });
        node.on('close', (done) => { job.stop().then(() => done()); });
    }
    RED.nodes.registerType('octopus-maintenance', OctopusMaintenanceNode);
};
