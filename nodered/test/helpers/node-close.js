'use strict';
/**
 * How the node tests tell a close that finished by itself from one that hung: Node-RED
 * gives up on a node's close after nodeCloseTimeout (15 s by default), which is where a
 * close that waits on a connection or a timer would end. Not a speed limit: a loaded CI
 * machine took 1.2 s to close what takes ~0.1 s on an idle one.
 */
const CLOSED_BY_ITSELF_MS = 10000;

module.exports = { CLOSED_BY_ITSELF_MS };
