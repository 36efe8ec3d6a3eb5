'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { parseMeasurement, parseStatus, decodeUtf8, parseTs } = require('../nodes/node-red-contrib-octopus/lib/payload');

const NOW = Date.parse('2026-11-22T12:00:00Z');
const value = (s) => parseMeasurement(s, NOW);

test('bare numbers', () => {
    for (const [s, n] of [['23.5', 23.5], ['-4', -4], ['1e3', 1000], ['+7', 7], ['.5', 0.5], ['3.', 3], [' 42 \n', 42], ['0', 0]]) {
        assert.deepEqual(value(s), { value: n, tsMs: null, unit: null }, s);
    }
});

test('NaN, Infinity and out-of-range numbers are rejected, not stored as states', () => {
    for (const s of ['NaN', 'nan', 'Infinity', '-Infinity', '+inf', 'INF']) {
        assert.match(value(s).error, /is not a finite number/, s);
    }
    assert.match(value('1e999').error, /number 1e999 is out of range/);
    assert.match(value('{"value": 1e999}').error, /"value" is not a finite number/);
    assert.match(value('{"value": "NaN"}').error, /is not a finite number/);
});

test('"12abc", hex and other non-values are rejected with what was expected', () => {
    assert.equal(value('12abc').error, 'payload "12abc" is not a number, true/false, a state string or a JSON object with "value"');
    assert.match(value('0x1F').error, /is not a number/);
    assert.match(value('[1,2]').error, /is not a number/);
    assert.match(value('"quoted"').error, /is not a number/);
});

test('an empty (or blank) payload is rejected', () => {
    assert.equal(value('').error, 'payload is empty');
    assert.equal(value('  \n').error, 'payload is empty');
});

test('booleans and state strings', () => {
    assert.equal(value('true').value, true);
    assert.equal(value('false').value, false);
    assert.equal(value('open').value, 'open');
    assert.equal(value('tripped: phase 2').value, 'tripped: phase 2');
    assert.equal(value('señal_baja-1.2').value, 'señal_baja-1.2');
    assert.equal(value('x'.repeat(64)).value, 'x'.repeat(64));
    assert.match(value('x'.repeat(65)).error, /is not a number/);
    assert.match(value('open!').error, /is not a number/);
    assert.match(value('9lives').error, /is not a number/);
});

test('JSON with value, ts (ISO 8601 or epoch ms) and unit', () => {
    assert.deepEqual(value('{"value": 23.5, "ts": "2026-11-22T11:59:00.250Z", "unit": "°C"}'),
        { value: 23.5, tsMs: Date.parse('2026-11-22T11:59:00.250Z'), unit: '°C' });
    assert.deepEqual(value('{"value": 1, "ts": 1795348740000}'), { value: 1, tsMs: 1795348740000, unit: null });
    assert.deepEqual(value('{"value": "open", "ts": "1795348740000"}'), { value: 'open', tsMs: 1795348740000, unit: null });
    assert.deepEqual(value('{"value": false}'), { value: false, tsMs: null, unit: null });
    assert.equal(value('{"value": 1, "ts": "2026-11-22T13:00:00+01:00"}').tsMs, Date.parse('2026-11-22T12:00:00Z'));
    assert.equal(value('{"value": 1, "ts": "2026-11-22 12:00:00.5Z"}').tsMs, Date.parse('2026-11-22T12:00:00.500Z'));
    assert.equal(value('{"value": 1, "unit": null, "ts": null}').unit, null);
});

test('JSON without value, with a bad value or bad JSON is rejected', () => {
    assert.equal(value('{"ts": 1795348740000}').error, 'JSON payload has no "value"');
    assert.equal(value('{"value": null}').error, 'JSON payload has no "value"');
    assert.equal(value('{"value": {"a": 1}}').error, '"value" must be a number, a boolean or a state string');
    assert.equal(value('{"value": "12abc"}').error, '"value" "12abc" is not a number, a boolean or a state string');
    assert.match(value('{"value": 1').error, /^payload is not valid JSON/);
});

test('a bad ts is rejected: not a time, no zone, impossible date, seconds, future', () => {
    const tsError = (ts) => value(JSON.stringify({ value: 1, ts })).error;
    assert.match(tsError('yesterday'), /^"ts" is not a time/);
    assert.match(tsError('2026-11-22T12:00:00'), /^"ts" is not a time/); // no zone: ambiguous
    assert.match(tsError('2026-02-30T12:00:00Z'), /^"ts" is not a time/);
    assert.match(tsError('2026-11-22T25:00:00Z'), /^"ts" is not a time/);
    assert.match(tsError(true), /^"ts" is not a time/);
    assert.match(tsError(1795348740), /before 2000: epoch seconds/);
    assert.match(tsError(NOW + 2 * 86400000), /more than a day in the future/);
    assert.equal(parseTs(NOW + 3600000, NOW), NOW + 3600000);
});

test('unit must be a short printable string', () => {
    assert.match(value('{"value": 1, "unit": 5}').error, /"unit" must be a string/);
    assert.match(value('{"value": 1, "unit": "a\\u0000b"}').error, /"unit" must be a string/);
    assert.match(value(`{"value": 1, "unit": "${'m'.repeat(33)}"}`).error, /"unit" must be a string/);
    assert.match(value('{"value": 1, "unit": ""}').error, /"unit" must be a string/);
});

test('status is online or offline, nothing else', () => {
    assert.equal(parseStatus('online'), 'online');
    assert.equal(parseStatus('offline\n'), 'offline');
    assert.equal(parseStatus('Online').error, 'status must be "online" or "offline", not "Online"');
    assert.equal(parseStatus('').error, 'status must be "online" or "offline", not ""');
});

test('UTF-8 is decoded strictly', () => {
    assert.equal(decodeUtf8(Buffer.from('23.5 °C')), '23.5 °C');
    assert.deepEqual(decodeUtf8(Buffer.from([0x32, 0xff, 0x33])), { error: 'payload is not valid UTF-8' });
    assert.deepEqual(decodeUtf8(Buffer.from([0xc3])), { error: 'payload is not valid UTF-8' });
});

test('reasons never echo control characters and stay short', () => {
    const r = value(`bad\u0001${'z'.repeat(100)}`).error;
    assert.ok(!/[\u0000-\u001f]/.test(r));
    assert.ok(r.length < 140, r);
});
