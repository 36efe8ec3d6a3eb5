'use strict';
// What octopus-modbus and octopus-alerts share in how they speak to Node-RED.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { statusOnChange, warnOnceOn, settleWithin } = require('../nodes/node-red-contrib-octopus/lib/node-lifecycle');

function fakeNode() {
    return { statuses: [], warnings: [], status(s) { this.statuses.push(s.text); }, warn(t) { this.warnings.push(t); } };
}

test('a status is set only when its text changes', () => {
    const node = fakeNode();
    const set = statusOnChange(node);
    for (const text of ['polling', 'polling', 'standby', 'polling']) set({ fill: 'green', shape: 'dot', text });
    assert.deepEqual(node.statuses, ['polling', 'standby', 'polling']);
});

test('a warning is said once while it repeats, and again after reset()', () => {
    const node = fakeNode();
    const warn = warnOnceOn(node);
    for (const text of ['down', 'down', 'refused', 'refused']) warn(text);
    warn.reset();
    warn('refused');
    assert.deepEqual(node.warnings, ['down', 'refused', 'refused']);
});

test('settleWithin gives the promise its time, and no more', async () => {
    assert.equal(await settleWithin(Promise.resolve('done'), 1000), 'done');
    const started = Date.now();
    assert.equal(await settleWithin(new Promise(() => {}), 50), undefined);
    assert.ok(Date.now() - started < 1000);
});
