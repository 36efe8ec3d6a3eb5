'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { classifyTopic } = require('../nodes/node-red-contrib-octopus/lib/topic');

test('a four-level topic is a measurement', () => {
    assert.deepEqual(classifyTopic('oficina/servidores/servidor1/temperatura'), {
        kind: 'measurement', site: 'oficina', room: 'servidores', device: 'servidor1', attribute: 'temperatura',
    });
});

test('<device>/status is availability', () => {
    assert.deepEqual(classifyTopic('a/b/c/status'), { kind: 'status', site: 'a', room: 'b', device: 'c', attribute: 'status' });
});

test('commands (.../set) and the platform\'s own topics are ignored', () => {
    assert.equal(classifyTopic('a/b/c/d/set').kind, 'command');
    assert.equal(classifyTopic('octopus/x/y').kind, 'platform');
    assert.equal(classifyTopic('octopus/live').kind, 'platform');
    assert.equal(classifyTopic('octopus/a/b/c').kind, 'platform');
});

test('"set" as the fourth level is an attribute like any other', () => {
    assert.equal(classifyTopic('a/b/c/set').kind, 'measurement');
});

test('wrong depth is rejected with the count of levels', () => {
    assert.deepEqual(classifyTopic('a/b/c'), {
        kind: 'reject', reason: 'topic has 3 levels, expected <site>/<room>/<device>/<attribute>',
    });
    assert.equal(classifyTopic('a').reason, 'topic has 1 level, expected <site>/<room>/<device>/<attribute>');
    assert.equal(classifyTopic('a/b/c/d/e').reason, 'topic has 5 levels, expected <site>/<room>/<device>/<attribute>');
    assert.equal(classifyTopic('a/b/c/d/e/set').reason, 'topic has 6 levels, expected <site>/<room>/<device>/<attribute>');
    assert.equal(classifyTopic('octopus').kind, 'reject');
});

test('empty levels, wildcards, $-levels and control characters are rejected', () => {
    assert.equal(classifyTopic('a//c/d').reason, 'topic level 2 is empty');
    assert.equal(classifyTopic('/b/c/d').reason, "topic starts with '/' (an empty first level), expected <site>/<room>/<device>/<attribute>");
    assert.equal(classifyTopic('/a/b/c/d').reason, "topic starts with '/' (an empty first level), expected <site>/<room>/<device>/<attribute>");
    assert.equal(classifyTopic('a/b/c/').reason, "topic ends with '/' (an empty last level), expected <site>/<room>/<device>/<attribute>");
    assert.equal(classifyTopic('a//c/d/set').reason, 'topic level 2 is empty');
    assert.equal(classifyTopic('a/$b/c/d').reason, "topic level 2 starts with '$'");
    assert.equal(classifyTopic('a/b+/c/d').reason, "topic level 2 contains a wildcard ('+' or '#')");
    assert.equal(classifyTopic('a/b/c/d#').reason, "topic level 4 contains a wildcard ('+' or '#')");
    assert.equal(classifyTopic('a/b\u0000/c/d').reason, 'topic level 2 contains a control character');
    assert.equal(classifyTopic('').reason, 'topic is empty');
    assert.equal(classifyTopic(undefined).reason, 'topic is empty');
});

test('a dollar sign inside a level is fine, at its start it is not', () => {
    assert.equal(classifyTopic('a/b$/c/d').kind, 'measurement');
});

test('unicode names are accepted', () => {
    assert.equal(classifyTopic('oficina/sala técnica/caldera 1/presión').kind, 'measurement');
});

test('levels longer than 128 characters are rejected', () => {
    const r = classifyTopic(`a/b/${'x'.repeat(129)}/d`);
    assert.equal(r.kind, 'reject');
    assert.equal(r.reason, 'topic level 3 is longer than 128 characters');
    assert.equal(classifyTopic(`a/b/${'x'.repeat(128)}/d`).kind, 'measurement');
});
