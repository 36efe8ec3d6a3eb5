'use strict';
/**
 * What the long-running nodes (octopus-modbus, octopus-alerts) share in how they speak to
 * Node-RED: a status set only when its text changes, a warning said once while it repeats,
 * and a close that never holds up a redeploy. Plain module: no Node-RED.
 */

/** A setter of node.status(status) that skips a status whose text is already shown. */
function statusOnChange(node) {
    let shown = '';
    return (status) => {
        if (status.text === shown) return;
        shown = status.text;
        node.status(status);
    };
}

/**
 * node.warn(text) said once while the same text repeats (a statement refused every few
 * seconds is said once, not at every retry); `.reset()` has the next one said again.
 */
function warnOnceOn(node) {
    let last = '';
    const warn = (text) => {
        if (text !== last) node.warn(text);
        last = text;
    };
    warn.reset = () => { last = ''; };
    return warn;
}

/** `promise`, or a promise resolved after `ms` if it takes longer. */
function settleWithin(promise, ms) {
    let timer;
    return Promise.race([promise, new Promise((resolve) => { timer = setTimeout(resolve, ms); })])
        .finally(() => clearTimeout(timer));
}

module.exports = { statusOnChange, warnOnceOn, settleWithin };
