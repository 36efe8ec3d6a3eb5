'use strict';
/**
 * A batch as ingest_keyed_batch(...) takes it (21 parallel arrays, postgres/migrations/012)
 * and as octopus/live publishes it (doc/topics.md). Plain module: no Node-RED.
 */

// Reading times are UTC ISO 8601 with a 4-digit year (payload.js refuses times before 2000
// or over a day ahead) and 3 decimals (a device's ts) or 6 (arrival time): padded to 6 they
// compare as text.
function sortableTs(ts) {
    return ts.length === 24 ? `${ts.slice(0, 23)}000Z` : ts;
}

/**
 * Items (from classify.js) → the 21 parameters of ingest_keyed_batch, in its order. Each
 * attribute of the batch is named once (k_*, with its newest reading for the last-value
 * cache); a reading carries its attribute's position in k_* (from 1). Other kinds
 * (`ignored`, which the broker ingest batches too) contribute nothing.
 */
function toIngestParams(items) {
    const k = { site: [], room: [], device: [], attribute: [], unit: [], ts: [], num: [], txt: [] };
    const m = { key: [], ts: [], num: [], txt: [] };
    const s = { site: [], room: [], device: [], status: [], ts: [] };
    const r = { topic: [], reason: [], payload: [], size: [] };
    const keys = new Map(); // 'site/room/device/attribute' → position in k_*, from 1
    for (const it of items) {
        if (it.kind === 'reading') {
            // num holds numbers and booleans as 1/0, txt states and 'true'/'false' (see 001)
            let num = null;
            let txt = null;
            if (typeof it.value === 'number') {
                num = it.value;
            } else if (typeof it.value === 'boolean') {
                num = it.value ? 1 : 0;
                txt = String(it.value);
            } else {
                txt = it.value;
            }
            const name = `${it.site}/${it.room}/${it.device}/${it.attribute}`;
            let key = keys.get(name);
            if (key === undefined) {
                key = k.site.push(it.site); // the new length: its position, from 1
                keys.set(name, key);
                k.room.push(it.room);
                k.device.push(it.device);
                k.attribute.push(it.attribute);
                k.unit.push(it.unit);
                k.ts.push(it.ts);
                k.num.push(num);
                k.txt.push(txt);
            } else if (sortableTs(it.ts) >= sortableTs(k.ts[key - 1])) {
                // the newest reading (the later one of equal times) is the last value
                k.unit[key - 1] = it.unit;
                k.ts[key - 1] = it.ts;
                k.num[key - 1] = num;
                k.txt[key - 1] = txt;
            }
            m.key.push(key);
            m.ts.push(it.ts);
            m.num.push(num);
            m.txt.push(txt);
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
        k.site, k.room, k.device, k.attribute, k.unit, k.ts, k.num, k.txt,
        m.key, m.ts, m.num, m.txt,
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
