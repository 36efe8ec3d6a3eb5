'use strict';
/**
 * One Modbus TCP connection to one device, through modbus-serial, and the classification of
 * what goes wrong: timeout, exception, connection or garbage. Plain module: no Node-RED.
 *
 * We open the TCP socket ourselves and hand it to modbus-serial (its `socket` option): with a
 * socket of its own, modbus-serial notices neither a connect that hangs nor a reset under a
 * pending request (its 'close' is not emitted after a socket error), so a dropped connection
 * would show up as a timeout, a whole timeout late.
 */

const net = require('net');
const ModbusRTU = require('modbus-serial');
const { describeBlock } = require('./modbus-plan');

const READ = { holding: 'readHoldingRegisters', input: 'readInputRegisters', coil: 'readCoils', discrete: 'readDiscreteInputs' };
// modbus-serial's parse errors (index.js _onReceive): a frame of the wrong length, for another
// unit or function, or (RTU only) a bad CRC.
const PARSE_ERROR = /^(Data length error|Unexpected data error|CRC error)/;

/** An Error of a known kind ('timeout' | 'exception' | 'connection' | 'garbage'). */
function failure(kind, message) {
    const err = new Error(message);
    err.kind = kind;
    return err;
}

/**
 * The kind of a failed request: ours carry `kind`; modbus-serial's exception responses carry
 * `modbusCode`, its timeouts errno ETIMEDOUT, "Port Not Open" errno ECONNREFUSED. Anything
 * else comes from parsing an answer (PARSE_ERROR, or a RangeError reading past a frame whose
 * byte count lies): garbage.
 */
function classifyError(err) {
    if (err && err.kind) return err.kind;
    if (err && err.modbusCode !== undefined) return 'exception';
    if (err && (err.name === 'TransactionTimedOutError' || err.errno === 'ETIMEDOUT')) return 'timeout';
    if (err && (err.name === 'PortNotOpenError' || /^E[A-Z]+$/.test(err.code || ''))) return 'connection';
    return 'garbage';
}

class ModbusConnection {
    /** @param {{host: string, port: number, unitId: number, timeoutMs: number}} opts */
    constructor({ host, port, unitId, timeoutMs }) {
        Object.assign(this, { host, port, unitId, timeoutMs });
        this.socket = null;
        this.client = null;
        this.closed = false;
        this.pending = null; // reject() of the request in flight
        this.socketError = null;
    }

    /** Whether requests can be sent. */
    get isOpen() {
        return Boolean(this.client) && !this.closed;
    }

    /** Connect within the timeout; rejects with a 'connection' failure. */
    open() {
        return new Promise((resolve, reject) => {
            const socket = net.connect({ host: this.host, port: this.port });
            this.socket = socket;
            const fail = (message) => {
                clearTimeout(timer);
                this.close();
                reject(failure('connection', message));
            };
            const timer = setTimeout(() => fail(`connect to ${this.host}:${this.port} timed out after ${this.timeoutMs} ms`), this.timeoutMs);
            socket.on('error', (e) => {
                this.socketError = e;
                if (!this.client) fail(`connect to ${this.host}:${this.port}: ${e.code || e.message}`);
            });
            socket.on('close', () => {
                this.closed = true;
                const why = this.socketError ? (this.socketError.code || this.socketError.message) : 'closed by the device';
                if (!this.client) fail(`connect to ${this.host}:${this.port}: closed before it was made`); // close() while connecting
                else if (this.pending) this.pending(failure('connection', `connection ${why}`));
            });
            socket.once('connect', () => {
                clearTimeout(timer);
                if (this.closed) return;
                socket.setNoDelay(true);
                const client = new ModbusRTU();
                client.on('error', () => {}); // relayed socket errors: handled above
                client.connectTCP(this.host, { port: this.port, socket }).then(() => {
                    client.setID(this.unitId);
                    // after connectTCP, which would otherwise make it the socket's idle timeout
                    client.setTimeout(this.timeoutMs);
                    this.client = client;
                    resolve();
                }, (e) => fail(`modbus-serial refused the connection: ${e.message}`));
            });
        });
    }

    /**
     * Read one planned block: registers as 16-bit numbers, or bits as booleans (`count` of
     * them). Rejects with an error for classifyError().
     */
    read(block) {
        const { client, socket } = this;
        const bytesBefore = socket.bytesRead;
        return new Promise((resolve, reject) => {
            const what = describeBlock(block);
            this.pending = reject;
            client[READ[block.register]](block.start, block.count).then((res) => {
                const data = res && res.data;
                const expected = block.register === 'coil' || block.register === 'discrete'
                    ? Array.isArray(data) && data.length >= block.count && data.length < block.count + 8
                    : Array.isArray(data) && data.length === block.count;
                if (expected) resolve(data);
                else reject(failure('garbage', `reading ${what}: the answer holds ${data ? data.length : 'no'} values for ${block.count}`));
            }, (err) => {
                let e = err;
                // modbus-serial drops a frame whose transaction id matches no request and then
                // times out: bytes that came in meanwhile were an answer, but not a valid one.
                if (classifyError(err) === 'timeout' && socket.bytesRead > bytesBefore) {
                    e = failure('garbage', 'an answer that matches no request (transaction id or length)');
                } else if (classifyError(err) === 'timeout') {
                    e = failure('timeout', `no answer in ${this.timeoutMs} ms`);
                }
                e.message = `reading ${what}: ${e.message}`;
                reject(e);
            }).finally(() => {
                if (this.pending === reject) this.pending = null;
            });
        });
    }

    /** Drop the connection at once (a request in flight fails as a connection error). */
    close() {
        if (this.client) this.client.destroy(() => {}); // also stops its pending timeouts
        if (this.socket) this.socket.destroy();
        this.closed = true;
    }
}

module.exports = { ModbusConnection, classifyError, failure };
