'use strict';
/**
 * Read planning: a profile's attributes → the fewest Modbus requests that cover them. Each
 * register kind is read in contiguous blocks; blocks a few registers apart are merged (one
 * round trip costs far more than a few unused registers), within the protocol's limits per
 * request. Plain module: no Node-RED.
 */

// Modbus application protocol v1.1b3, §6.1–6.4: quantity per read request.
const MAX_PER_REQUEST = { holding: 125, input: 125, coil: 2000, discrete: 2000 };
// Unused registers (or bits) a merged block may span between two attributes. Small, because
// a device may answer "illegal data address" for a hole in its map.
const MAX_GAP = 8;
const KIND_ORDER = ['coil', 'discrete', 'holding', 'input'];

/**
 * Plan the reads for `attributes` (normalised, modbus-profile.js):
 * [{register, start, count, attributes: [{...attribute, index}]}], `index` being the
 * attribute's first register (or bit) within the block.
 */
function planReads(attributes, { maxGap = MAX_GAP } = {}) {
    const blocks = [];
    for (const register of KIND_ORDER) {
        const sorted = attributes.filter((a) => a.register === register).sort((x, y) => x.address - y.address);
        let block = null;
        for (const a of sorted) {
            const end = a.address + a.words; // exclusive
            const fits = block
                && a.address - (block.start + block.count) <= maxGap
                && end - block.start <= MAX_PER_REQUEST[register];
            if (!fits) {
                block = { register, start: a.address, count: 0, attributes: [] };
                blocks.push(block);
            }
            block.count = Math.max(block.count, end - block.start);
            block.attributes.push({ ...a, index: a.address - block.start });
        }
    }
    return blocks;
}

/** A block for messages: "input 0-13", "coil 5". */
function describeBlock(block) {
    const last = block.start + block.count - 1;
    return `${block.register} ${block.start}${last > block.start ? `-${last}` : ''}`;
}

module.exports = { planReads, describeBlock, MAX_PER_REQUEST, MAX_GAP };
