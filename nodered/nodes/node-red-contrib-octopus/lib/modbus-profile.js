'use strict';
/**
 * Modbus device profiles (modbus/profiles/<profile>.json, doc/modbus.md): what to read from a
 * model of device and how to turn registers into values. A profile is validated once when
 * it is loaded, so that the poller never meets a bad attribute: every problem is reported
 * with the file and the attribute it is about. Plain module: no Node-RED.
 */

const { parseMeasurement } = require('./payload');

const REGISTERS = ['holding', 'input', 'coil', 'discrete'];
const BIT_REGISTERS = new Set(['coil', 'discrete']);
// registers per value, and the raw range (for the keys of `states`)
const TYPES = {
    int16: { words: 1, min: -0x8000, max: 0x7fff },
    uint16: { words: 1, min: 0, max: 0xffff },
    int32: { words: 2, min: -0x80000000, max: 0x7fffffff },
    uint32: { words: 2, min: 0, max: 0xffffffff },
    float32: { words: 2 },
    bool: { words: 1, min: 0, max: 1 },
};
const ORDERS = ['big', 'little'];
const ATTRIBUTE_KEYS = new Set(['name', 'register', 'address', 'type', 'word_order', 'byte_order',
    'scale', 'offset', 'unit', 'states', 'description']);
const PROFILE_KEYS = new Set(['model', 'title', 'source', 'description', 'attributes']);
// One topic level (doc/topics.md); `status` is the device's availability topic, not an attribute.
const TOPIC_LEVEL = /^[^/+#$\u0000-\u001f\u007f][^/+#\u0000-\u001f\u007f]{0,127}$/;
const LAST_ADDRESS = 0xffff;

/** Decimals a number is written with: 0.1 → 1, 0.001 → 3, 1e-7 → 7, 2 → 0. */
function decimalsOf(n) {
    const [mantissa, exponent = '0'] = String(n).toLowerCase().split('e');
    const fraction = (mantissa.split('.')[1] || '').length;
    return Math.max(0, fraction - Number(exponent));
}

/** Whether the ingest takes `value` (and `unit`) as a reading: the contract published values must meet. */
function ingestAccepts(value, unit) {
    return !parseMeasurement(JSON.stringify({ value, unit }), Date.now()).error;
}

/**
 * Check one attribute (`a`, the `i`-th) and return it normalised (camelCase, defaults filled
 * in); its problems are pushed onto `errors` as sentences naming it.
 */
function normaliseAttribute(a, i, errors) {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) {
        errors.push(`attribute #${i + 1} is not an object`);
        return null;
    }
    const label = typeof a.name === 'string' && a.name ? `attribute "${a.name}"` : `attribute #${i + 1}`;
    const problem = (text) => errors.push(`${label}: ${text}`);
    for (const key of Object.keys(a)) if (!ATTRIBUTE_KEYS.has(key)) problem(`unknown property "${key}"`);
    if (typeof a.name !== 'string' || !TOPIC_LEVEL.test(a.name) || a.name === 'status') {
        problem('"name" must be one topic level (no "/", "+", "#", no leading "$") and not "status"');
    }
    if (!REGISTERS.includes(a.register)) problem(`"register" must be one of ${REGISTERS.join(', ')}`);
    const bits = BIT_REGISTERS.has(a.register);
    const type = a.type === undefined && bits ? 'bool' : a.type;
    if (!Object.prototype.hasOwnProperty.call(TYPES, type)) {
        problem(`unknown type ${JSON.stringify(type)}: use ${Object.keys(TYPES).filter((t) => t !== 'bool').join(', ')}`);
        return null;
    }
    if (bits !== (type === 'bool')) {
        problem(bits ? `a ${a.register} is one bit: leave "type" out` : '"bool" is for coil and discrete registers');
    }
    const { words } = TYPES[type];
    if (!Number.isInteger(a.address) || a.address < 0 || a.address + words - 1 > LAST_ADDRESS) {
        problem(`"address" must be a whole number from 0 to ${LAST_ADDRESS - words + 1} (0-based` +
            `${words > 1 ? `, and a ${type} takes ${words} registers` : ''})`);
    }
    for (const key of ['word_order', 'byte_order']) {
        if (a[key] !== undefined && !ORDERS.includes(a[key])) problem(`"${key}" must be "big" or "little"`);
    }
    if (a.word_order === 'little' && words !== 2) problem('"word_order" is for 32-bit types');
    if (a.byte_order !== undefined && bits) problem('"byte_order" is for registers, not bits');
    const scaled = a.scale !== undefined || a.offset !== undefined;
    if (a.scale !== undefined && !(typeof a.scale === 'number' && Number.isFinite(a.scale) && a.scale !== 0)) {
        problem('"scale" must be a non-zero number');
    }
    if (a.offset !== undefined && !(typeof a.offset === 'number' && Number.isFinite(a.offset))) {
        problem('"offset" must be a number');
    }
    if (scaled && bits) problem('"scale" and "offset" are for numbers, not bits');
    if (a.unit !== undefined && (typeof a.unit !== 'string' || !ingestAccepts(1, a.unit))) {
        problem('"unit" must be a string of 1 to 32 printable characters');
    }
    if (a.states !== undefined) checkStates(a.states, type, scaled, problem);
    return {
        name: a.name,
        register: a.register,
        address: a.address,
        type,
        words,
        wordOrder: a.word_order || 'big',
        byteOrder: a.byte_order || 'big',
        scale: a.scale === undefined ? 1 : a.scale,
        offset: a.offset === undefined ? 0 : a.offset,
        decimals: Math.max(decimalsOf(a.scale === undefined ? 1 : a.scale), decimalsOf(a.offset || 0)),
        unit: a.unit === undefined ? null : a.unit,
        states: a.states === undefined ? null : new Map(Object.entries(a.states)),
    };
}

function checkStates(states, type, scaled, problem) {
    if (states === null || typeof states !== 'object' || Array.isArray(states) || !Object.keys(states).length) {
        problem('"states" must be an object of raw value → state name');
        return;
    }
    if (type === 'float32') problem('"states" need an integer type');
    if (scaled) problem('"states" name raw values: leave out "scale" and "offset"');
    const { min, max } = TYPES[type];
    for (const [raw, state] of Object.entries(states)) {
        if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
            problem(`state key "${raw}" is not a ${type} value`);
        }
        if (typeof state !== 'string' || !ingestAccepts(state)) {
            problem(`state ${JSON.stringify(state)} must start with a letter and hold only letters, digits, space and _.:- (64 at most)`);
        }
    }
}

/** Registers that two attributes of one register kind share, as sentences (none: []). */
function findOverlaps(attributes) {
    const problems = [];
    for (const register of REGISTERS) {
        const spans = attributes.filter((a) => a.register === register && Number.isInteger(a.address))
            .sort((x, y) => x.address - y.address);
        for (let i = 1; i < spans.length; i += 1) {
            const prev = spans[i - 1];
            if (spans[i].address <= prev.address + prev.words - 1) {
                problems.push(`attributes "${prev.name}" and "${spans[i].name}" overlap at ${register} register ${spans[i].address}`);
            }
        }
    }
    return problems;
}

/** Validate a parsed profile from `file`: {profile: {model, attributes}, errors: []}. */
function validateProfile(json, file) {
    const errors = [];
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
        return { profile: null, errors: [`${file}: a profile is a JSON object with "attributes"`] };
    }
    for (const key of Object.keys(json)) if (!PROFILE_KEYS.has(key)) errors.push(`unknown property "${key}"`);
    if (!Array.isArray(json.attributes) || json.attributes.length === 0) {
        errors.push('"attributes" must be a non-empty list');
    }
    const attributes = (Array.isArray(json.attributes) ? json.attributes : [])
        .map((a, i) => normaliseAttribute(a, i, errors)).filter(Boolean);
    const names = new Set();
    for (const a of attributes) {
        if (names.has(a.name)) errors.push(`attribute "${a.name}" is defined twice`);
        names.add(a.name);
    }
    errors.push(...findOverlaps(attributes));
    const prefixed = errors.map((e) => `${file}: ${e}`);
    return prefixed.length ? { profile: null, errors: prefixed } : { profile: { model: json.model || null, attributes }, errors: [] };
}

module.exports = { validateProfile, decimalsOf, TYPES, BIT_REGISTERS };
