'use strict';
/**
 * A worker-wide lock: a PostgreSQL session advisory lock held on one dedicated connection of
 * a pool, which also carries every statement of the lock's owner. A statement that fails
 * because the connection is gone, or that takes longer than `timeoutMs`, means the lock can
 * no longer be trusted to be ours: the connection is dropped (freeing the lock for another
 * worker) and `onLost` is told. Plain module: no Node-RED.
 *
 * What makes one Node-RED worker of several the one that works: the Modbus fleet's polling
 * lock (lib/modbus-fleet.js) and the alert service's (lib/alerts-service.js).
 */

const TRY_LOCK_SQL = 'SELECT pg_try_advisory_lock($1::bigint) AS locked';
const UNLOCK_SQL = 'SELECT pg_advisory_unlock($1::bigint)';

/**
 * Whether a failed statement means the connection is gone or stuck (no SQLSTATE: pg's own
 * "connection terminated" or our deadline; 08: connection exception; 57: operator
 * intervention, e.g. pg_terminate_backend) rather than a refused statement (a missing table).
 */
function connectionLost(error) {
    return !/^[0-9A-Z]{5}$/.test(error.code || '') || /^(08|57)/.test(error.code);
}

class WorkerLock {
    /**
     * @param {object} opts
     * @param {() => object} opts.getPool  a pg.Pool
     * @param {number} opts.key  the advisory lock key
     * @param {(error: Error) => void} [opts.onLost]  the connection holding the lock failed
     * @param {number} [opts.timeoutMs]  a statement taking longer means the connection is stuck
     */
    constructor({ getPool, key, onLost = () => {}, timeoutMs = 5000 }) {
        Object.assign(this, { getPool, key, onLost, timeoutMs });
        this.client = null;
        this.closed = false;
    }

    get held() {
        return this.client !== null;
    }

    /** `promise` bounded by timeoutMs. */
    bounded(promise) {
        let timer;
        const deadline = new Promise((resolve, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer from PostgreSQL in ${this.timeoutMs / 1000} s`)), this.timeoutMs);
        });
        promise.catch(() => {}); // it may fail after the deadline, once the connection is dropped
        return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
    }

    /**
     * Try to take the lock: resolves to 'held' or 'standby' (another worker has it); rejects
     * when the database cannot be reached.
     */
    async acquire() {
        if (this.client) return 'held';
        const client = await this.getPool().connect();
        // a checked-out pg client that loses its connection emits 'error': unheard, it would crash Node-RED
        const onError = (error) => this.lose(client, error);
        const onEnd = () => this.lose(client, new Error('the connection holding the lock ended'));
        client.on('error', onError);
        client.on('end', onEnd);
        try {
            const { rows } = await this.bounded(client.query(TRY_LOCK_SQL, [this.key]));
            if (rows[0].locked === true && !this.closed) {
                this.client = client;
                return 'held';
            }
            client.removeListener('error', onError);
            client.removeListener('end', onEnd);
            client.release(this.closed); // closing: drop it, which also frees a lock just taken
            return 'standby';
        } catch (error) {
            client.release(error);
            throw error;
        }
    }

    /** A statement on the lock connection; a lost or stuck connection loses the lock, and rejects. */
    async query(text, values) {
        const client = this.client;
        if (!client) throw Object.assign(new Error('the lock is not held'), { code: 'NOLCK' });
        try {
            return await this.bounded(client.query(text, values));
        } catch (error) {
            if (connectionLost(error)) this.lose(client, error);
            throw error;
        }
    }

    /** The lock connection failed: drop it (and with it the session's lock) and say so. */
    lose(client, error) {
        if (this.client !== client) return;
        this.client = null;
        client.release(error);
        if (!this.closed) this.onLost(error);
    }

    /**
     * Give the lock back and drop the connection. Ending the connection frees it too, but only
     * once the server has noticed: a worker taking over should not have to wait for that.
     */
    async release() {
        this.closed = true;
        const client = this.client;
        if (!client) return;
        await this.bounded(client.query(UNLOCK_SQL, [this.key])).catch(() => {});
        this.lose(client, true);
    }
}

module.exports = { WorkerLock, connectionLost };
