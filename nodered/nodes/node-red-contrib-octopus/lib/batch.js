'use strict';
/**
 * A batch as ingest_batch(...) takes it (17 parallel arrays, postgres/migrations/001) and as
 * octopus/live publishes it (doc/topics.md). Plain module: no Node-RED.
 */

/**
 * Items (from classify.js) → the 17 parameters of ingest_batch, in its order. Other kinds
 * (`ignored`, which the broker ingest batches too) contribute nothing.
 */
function toIngestParams(items) {
    const m = { site: [], room: [], device: [], attribute: [], ts: [], num: [], txt: [], unit: [] };
    const s = { site: [], room: [], device: [], status: [], ts: [] };
    const r = { topic: [], reason: [], payload: [], size: [] };
    for (const it of items) {
        if (it.kind === 'reading') {
            m.site.push(it.site);
            m.room.push(it.room);
            m.device.push(it.device);
            m.attribute.push(it.attribute);
            m.ts.push(it.ts);
            // num holds numbers and booleans as 1/0, txt states and 'true'/'false' (see 001)
            if (typeof it.value === 'number') {
                m.num.push(it.value);
                m.txt.push(null);
            } else if (typeof it.value === 'boolean') {
                m.num.push(it.value ? 1 : 0);
                m.txt.push(String(it.value));
            } else {
                m.num.push(null);
                m.txt.push(it.value);
            }
            m.unit.push(it.unit);
        } else if (it.kind === 'status') {
            s.site.push(it.site);
            s.room.push(it.room);
            s.device.push(it.device);
            s.status.push(it.status);
            s.ts.push(it.ts);
        } else if (it.kind === 'reject') {
            r.topic.push(it.topic);
            r.reason.push(it.reason);
            r.payload.push(it.payload);
            r.size.push(it.size);
        }
    }
    return [
        m.site, m.room, m.device, m.attribute, m.ts, m.num, m.txt, m.unit,
        s.site, s.room, s.device, s.status, s.ts,
        r.topic, r.reason, r.payload, r.size,
    ];
}

/** Items of a committed batch → the octopus/live payload. */
function toLivePayload(items) {
    const readings = [];
    const statuses = [];
    let rejects = 0;
    for (const it of items) {
        if (it.kind === 'reading') {
            readings.push({
                site: it.site, room: it.room, device: it.device, attribute: it.attribute,
                ts: it.ts, value: it.value, unit: it.unit,
            });
        } else if (it.kind === 'status') {
            statuses.push({ site: it.site, room: it.room, device: it.device, status: it.status, ts: it.ts });
        } else if (it.kind === 'reject') {
            rejects += 1;
        }
    }
    return { readings, statuses, rejects };
}

module.exports = { toIngestParams, toLivePayload };
