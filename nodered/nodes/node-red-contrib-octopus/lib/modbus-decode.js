'use strict';
/**
 * Registers → values: the raw value of an attribute (type, word and byte order), then the
 * value published (scale, offset, states). Plain module: no Node-RED.
 */

// float32 holds 24 bits of mantissa, about 7.2 decimal digits: more digits are noise
// (0.85 comes back as 0.8500000238418579).
const FLOAT32_DIGITS = 7;

/**
 * The raw value of `attr` (normalised, with `index` in its block) from the block's `data`:
 * registers (16-bit unsigned numbers) or bits (booleans). A boolean for bits, else a number.
 */
function rawValue(attr, data) {
    if (attr.type === 'bool') return Boolean(data[attr.index]);
    let words = data.slice(attr.index, attr.index + attr.words);
    // byte_order little: the device sends each register's low byte first
    if (attr.byteOrder === 'little') words = words.map((w) => ((w & 0xff) << 8) | (w >> 8));
    // word_order little: the low 16 bits come in the first register
    if (attr.wordOrder === 'little') words = words.reverse();
    const buf = Buffer.alloc(2 * words.length);
    words.forEach((w, i) => buf.writeUInt16BE(w, 2 * i));
    switch (attr.type) {
    case 'int16': return buf.readInt16BE(0);
    case 'uint16': return buf.readUInt16BE(0);
    case 'int32': return buf.readInt32BE(0);
    case 'uint32': return buf.readUInt32BE(0);
    case 'float32': return buf.readFloatBE(0);
    default: throw new Error(`unknown type ${attr.type}`);
    }
}

/**
 * The value published for raw value `raw`: a state name (unknown raw values as
 * "unknown:<raw>"), a boolean, or raw × scale + offset rounded to what the profile can
 * express; null for a float that is not finite (the ingest takes finite numbers only).
 */
function publishedValue(attr, raw) {
    if (attr.states) {
        const key = String(typeof raw === 'boolean' ? Number(raw) : raw);
        return attr.states.has(key) ? attr.states.get(key) : `unknown:${key}`;
    }
    if (typeof raw === 'boolean') return raw;
    if (!Number.isFinite(raw)) return null;
    const value = raw * attr.scale + attr.offset;
    if (attr.type === 'float32') return Number(value.toPrecision(FLOAT32_DIGITS));
    // An integer × scale + offset has no more decimals than scale and offset: any more are
    // binary noise (2307 × 0.1 = 230.70000000000002).
    return Number(value.toFixed(Math.min(attr.decimals, 100)));
}

/** All values of one block's answer: [{attr, value}] (value null: not publishable). */
function decodeBlock(block, data) {
    return block.attributes.map((attr) => ({ attr, value: publishedValue(attr, rawValue(attr, data)) }));
}

module.exports = { rawValue, publishedValue, decodeBlock };
