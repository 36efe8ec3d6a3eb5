'use strict';
// Registers → values (lib/modbus-decode.js) and read planning (lib/modbus-plan.js), against
// register vectors computed by hand.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { validateProfile } = require('../nodes/node-red-contrib-octopus/lib/modbus-profile');
const { rawValue, publishedValue, decodeBlock } = require('../nodes/node-red-contrib-octopus/lib/modbus-decode');
const { planReads, describeBlock } = require('../nodes/node-red-contrib-octopus/lib/modbus-plan');

/** One attribute, normalised as a profile would, at index 0 of its block. */
function attr(spec) {
    const { profile, errors } = validateProfile({ attributes: [{ name: 'x', address: 0, register: 'holding', ...spec }] }, 't.json');
    assert.deepEqual(errors, []);
    return { ...profile.attributes[0], index: 0 };
}
const decode = (spec, regs) => publishedValue(attr(spec), rawValue(attr(spec), regs));

test('modbus decode: 16-bit integers, signed and unsigned, and byte order', () => {
    assert.equal(decode({ type: 'int16' }, [0xff9c]), -100);
    assert.equal(decode({ type: 'uint16' }, [0xff9c]), 65436);
    assert.equal(decode({ type: 'int16' }, [0x7fff]), 32767);
    assert.equal(decode({ type: 'int16' }, [0x8000]), -32768);
    // byte_order little: the low byte comes first in each register
    assert.equal(decode({ type: 'uint16', byte_order: 'little' }, [0x3412]), 0x1234);
    assert.equal(decode({ type: 'int16', byte_order: 'little' }, [0x9cff]), -100);
});

test('modbus decode: 32-bit integers in both word orders', () => {
    assert.equal(decode({ type: 'int32' }, [0xffff, 0xfffe]), -2);
    assert.equal(decode({ type: 'int32', word_order: 'little' }, [0xfffe, 0xffff]), -2);
    assert.equal(decode({ type: 'uint32' }, [0x0001, 0x0002]), 65538);
    assert.equal(decode({ type: 'uint32', word_order: 'little' }, [0x0002, 0x0001]), 65538);
    assert.equal(decode({ type: 'uint32' }, [0xffff, 0xffff]), 4294967295);
    assert.equal(decode({ type: 'int32' }, [0x8000, 0x0000]), -2147483648);
    // 65536 = 0x00010000: words 0x0001 0x0000, each with its bytes swapped
    assert.equal(decode({ type: 'uint32', byte_order: 'little' }, [0x0100, 0x0000]), 65536);
    assert.equal(decode({ type: 'uint32', byte_order: 'little', word_order: 'little' }, [0x0000, 0x0100]), 65536);
    // osm27's voltages: uint32, low word first, × 0.1 — 0x00012345 = 74565
    assert.equal(decode({ type: 'uint32', word_order: 'little', scale: 0.1 }, [0x2345, 0x0001]), 7456.5);
});

test('modbus decode: float32 in every order, float noise rounded to 7 digits, NaN not published', () => {
    // 230.5 = 0x43668000
    assert.equal(decode({ type: 'float32' }, [0x4366, 0x8000]), 230.5);
    assert.equal(decode({ type: 'float32', word_order: 'little' }, [0x8000, 0x4366]), 230.5);
    assert.equal(decode({ type: 'float32', byte_order: 'little' }, [0x6643, 0x0080]), 230.5);
    assert.equal(decode({ type: 'float32', byte_order: 'little', word_order: 'little' }, [0x0080, 0x6643]), 230.5);
    // 0.85 is 0x3F59999A as a float32, which reads back as 0.8500000238418579
    assert.equal(rawValue(attr({ type: 'float32' }), [0x3f59, 0x999a]), 0.8500000238418579);
    assert.equal(decode({ type: 'float32' }, [0x3f59, 0x999a]), 0.85);
    assert.equal(decode({ type: 'float32' }, [0xc2f6, 0xe979]), -123.456);
    assert.equal(decode({ type: 'float32', scale: 2, offset: 1 }, [0x4366, 0x8000]), 462);
    assert.equal(decode({ type: 'float32' }, [0x7fc0, 0x0000]), null, 'NaN');
    assert.equal(decode({ type: 'float32' }, [0x7f80, 0x0000]), null, '+Infinity');
});

test('modbus decode: scale and offset, rounded to the decimals the profile gives', () => {
    assert.equal(2307 * 0.1, 230.70000000000002, 'the noise being rounded away');
    assert.equal(decode({ type: 'uint16', scale: 0.1 }, [2307]), 230.7);
    assert.equal(decode({ type: 'uint16', scale: 0.1 }, [3]), 0.3);
    assert.equal(decode({ type: 'int16', scale: 0.1, offset: -40 }, [650]), 25);
    assert.equal(decode({ type: 'uint16', scale: 0.01, offset: 273.15 }, [2500]), 298.15);
    assert.equal(decode({ type: 'int32', scale: 0.001 }, [0xffff, 0xfb2e]), -1.234);
    assert.equal(decode({ type: 'uint16', scale: 10 }, [7]), 70);
    assert.equal(decode({ type: 'uint16', offset: 0.5 }, [7]), 7.5);
    assert.equal(decode({ type: 'uint16', scale: 1e-7 }, [3]), 3e-7);
});

test('modbus decode: states by raw value, unknown raw values named as such', () => {
    const states = { 0: 'open', 1: 'closed', 2: 'lockout' };
    assert.equal(decode({ type: 'uint16', states }, [1]), 'closed');
    assert.equal(decode({ type: 'uint16', states }, [2]), 'lockout');
    assert.equal(decode({ type: 'uint16', states }, [7]), 'unknown:7');
    assert.equal(decode({ type: 'int16', states: { '-1': 'fault', 0: 'ok' } }, [0xffff]), 'fault');
});

test('modbus decode: coils and discrete inputs are booleans (or states)', () => {
    assert.equal(decode({ register: 'coil' }, [true, false]), true);
    assert.equal(decode({ register: 'discrete' }, [false]), false);
    assert.equal(decode({ register: 'coil', states: { 0: 'off', 1: 'on' } }, [true]), 'on');
    // a block of bits: each attribute at its own index
    const { profile } = validateProfile({ attributes: [
        { name: 'a', register: 'coil', address: 3 }, { name: 'b', register: 'coil', address: 5 },
    ] }, 't.json');
    const [block] = planReads(profile.attributes);
    const values = decodeBlock(block, [true, false, true, false, false, false, false, false]);
    assert.deepEqual(values.map((v) => [v.attr.name, v.value]), [['a', true], ['b', true]]);
});

/** Attributes from [register, address, type] triples. */
function attributes(specs) {
    const { profile, errors } = validateProfile({
        attributes: specs.map(([register, address, type], i) => ({ name: `a${i}`, register, address, type })),
    }, 't.json');
    assert.deepEqual(errors, []);
    return profile.attributes;
}
const shape = (blocks) => blocks.map((b) => [b.register, b.start, b.count]);

test('modbus plan: contiguous attributes are one request, 32-bit values included', () => {
    const blocks = planReads(attributes([['input', 2, 'uint16'], ['input', 0, 'uint16'], ['input', 1, 'int16'], ['input', 3, 'float32']]));
    assert.deepEqual(shape(blocks), [['input', 0, 5]]);
    assert.deepEqual(blocks[0].attributes.map((a) => [a.name, a.index]), [['a1', 0], ['a2', 1], ['a0', 2], ['a3', 3]]);
    assert.equal(describeBlock(blocks[0]), 'input 0-4');
});

test('modbus plan: gaps of up to 8 registers are read through, wider gaps split', () => {
    assert.deepEqual(shape(planReads(attributes([['holding', 0, 'uint16'], ['holding', 9, 'uint16']]))), [['holding', 0, 10]]);
    assert.deepEqual(shape(planReads(attributes([['holding', 0, 'uint16'], ['holding', 10, 'uint16']]))),
        [['holding', 0, 1], ['holding', 10, 1]]);
    assert.deepEqual(shape(planReads(attributes([['holding', 0, 'uint32'], ['holding', 10, 'uint16']]))), [['holding', 0, 11]]);
});

test('modbus plan: one request per register kind, within the protocol limits', () => {
    assert.deepEqual(shape(planReads(attributes([['holding', 0, 'uint16'], ['input', 0, 'uint16'], ['coil', 0], ['discrete', 0]]))),
        [['coil', 0, 1], ['discrete', 0, 1], ['holding', 0, 1], ['input', 0, 1]]);
    // 125 registers per holding/input request
    const regs = Array.from({ length: 40 }, (_, i) => ['input', i * 4, 'uint32']);
    assert.deepEqual(shape(planReads(attributes(regs))), [['input', 0, 122], ['input', 124, 34]]);
    const limit = planReads(attributes([...Array.from({ length: 16 }, (_, i) => ['holding', i * 8, 'uint16']), ['holding', 124, 'uint16']]));
    assert.deepEqual(shape(limit), [['holding', 0, 125]]);
    const over = planReads(attributes([...Array.from({ length: 16 }, (_, i) => ['holding', i * 8, 'uint16']), ['holding', 124, 'uint32']]));
    assert.deepEqual(shape(over), [['holding', 0, 121], ['holding', 124, 2]]);
    // 2000 bits per coil/discrete request
    const bits = Array.from({ length: 251 }, (_, i) => ['coil', i * 8]);
    assert.deepEqual(shape(planReads(attributes(bits))), [['coil', 0, 1993], ['coil', 2000, 1]]);
});
