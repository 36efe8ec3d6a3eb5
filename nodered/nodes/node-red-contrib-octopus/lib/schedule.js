'use strict';
/**
 * A job run again and again, never two at once: the database upkeep, the Modbus fleet's and
 * the alert service's refreshes. Plain module: no Node-RED.
 */

/**
 * Call `run()` now and then every `intervalMs` after the previous call ended.
 * `onResult(result, ms)` / `onError(err)` hear of each run. Returns {stop(): Promise}, which
 * cancels the next run and resolves once a run in progress has ended.
 */
function schedule(run, intervalMs, { onResult = () => {}, onError = () => {}, timers = { setTimeout, clearTimeout } } = {}) {
    let timer = null;
    let current = null;
    let stopped = false;

    function tick() {
        timer = null;
        const started = Date.now();
        current = Promise.resolve()
            .then(run)
            .then((result) => onResult(result, Date.now() - started), onError)
            .then(() => {
                current = null;
                if (!stopped) timer = timers.setTimeout(tick, intervalMs);
            });
    }

    tick();
    return {
        stop() {
            stopped = true;
            if (timer) timers.clearTimeout(timer);
            return current || Promise.resolve();
        },
    };
}

module.exports = { schedule };
