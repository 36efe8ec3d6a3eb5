'use strict';
/**
 * Topic classification for the ingest (doc/topics.md): the one place that knows the shape of
 * Octopus topics. Plain module: no Node-RED, unit-tested directly.
 */

const PLATFORM_PREFIX = 'octopus/';
// Longer levels are refused so that (site, room, device) always fits a btree index entry
// (PostgreSQL's limit is ~2,700 bytes); real names are far shorter.
const MAX_LEVEL_CHARS = 128;

// The hot path: one compiled pattern accepts every valid device topic. A level is non-empty,
// holds no '/', '+', '#' or control character and does not start with '$'.
const LEVEL = '([^/+#$\\u0000-\\u001f][^/+#\\u0000-\\u001f]*)';
const DEVICE_TOPIC = new RegExp(`^${LEVEL}/${LEVEL}/${LEVEL}/${LEVEL}(/set)?$`);

/**
 * Classify a topic: {kind: 'measurement'|'status', site, room, device, attribute},
 * {kind: 'command'|'platform'} (ignored) or {kind: 'reject', reason}.
 */
function classifyTopic(topic) {
    if (typeof topic !== 'string' || topic.length === 0) {
        return { kind: 'reject', reason: 'topic is empty' };
    }
    if (topic.startsWith(PLATFORM_PREFIX)) {
        return { kind: 'platform' };
    }
    const m = DEVICE_TOPIC.exec(topic);
    if (m === null) {
        return { kind: 'reject', reason: explainBadTopic(topic) };
    }
    const [, site, room, device, attribute, set] = m;
    const tooLong = [site, room, device, attribute].findIndex((l) => l.length > MAX_LEVEL_CHARS);
    if (tooLong >= 0) {
        return { kind: 'reject', reason: `topic level ${tooLong + 1} is longer than ${MAX_LEVEL_CHARS} characters` };
    }
    if (set) {
        return { kind: 'command' };
    }
    return { kind: attribute === 'status' ? 'status' : 'measurement', site, room, device, attribute };
}

/** Say, for a person, why a topic does not match the contract (the slow path, rejects only). */
function explainBadTopic(topic) {
    const levels = topic.split('/');
    const depth = levels.length;
    // the usual mistakes first, named as such
    if (topic.startsWith('/')) return "topic starts with '/' (an empty first level), expected <site>/<room>/<device>/<attribute>";
    if (topic.endsWith('/')) return "topic ends with '/' (an empty last level), expected <site>/<room>/<device>/<attribute>";
    const isCommand = depth === 5 && levels[4] === 'set';
    if (depth !== 4 && !isCommand) {
        return `topic has ${depth} level${depth === 1 ? '' : 's'}, expected <site>/<room>/<device>/<attribute>`;
    }
    for (let i = 0; i < levels.length; i++) {
        const level = levels[i];
        const n = i + 1;
        if (level.length === 0) return `topic level ${n} is empty`;
        if (level.startsWith('$')) return `topic level ${n} starts with '$'`;
        if (/[+#]/.test(level)) return `topic level ${n} contains a wildcard ('+' or '#')`;
        if (/[\u0000-\u001f]/.test(level)) return `topic level ${n} contains a control character`;
    }
    return 'topic does not match <site>/<room>/<device>/<attribute>';
}

/** The retained statistics topic of one worker, e.g. octopus/stats/ingest/<worker>. */
function statsTopic(kind, worker) {
    // a client id may hold characters that are not allowed in (or change) a topic level
    return `${PLATFORM_PREFIX}stats/${kind}/${String(worker).replace(/[/+#]/g, '_')}`;
}

/**
 * An MQTT topic filter (`+` one level, `#` the remaining levels) over topics of `depth`
 * levels, made once: {match(topic): boolean} or {problem} saying what is wrong with it.
 * E.g. over <site>/<room>/<device>: '#', 'planta/#', 'oficina/+/servidor1'.
 */
function compileTopicFilter(filter, depth) {
    if (typeof filter !== 'string' || filter === '') return { problem: 'the filter is empty' };
    const levels = filter.split('/');
    const hash = levels.indexOf('#');
    if (hash >= 0 && hash !== levels.length - 1) return { problem: `'#' must be the last level of "${filter}"` };
    if (levels.some((l) => l !== '+' && l !== '#' && /[+#]/.test(l))) {
        return { problem: `a wildcard must be a whole level in "${filter}" ('+' or '#' alone between '/')` };
    }
    if (levels.some((l) => l === '')) return { problem: `"${filter}" has an empty level` };
    const fixed = hash >= 0 ? levels.length - 1 : levels.length;
    if (fixed > depth || (hash < 0 && fixed < depth)) {
        return { problem: `"${filter}" has ${levels.length} level${levels.length === 1 ? '' : 's'}: it can never match a topic of ${depth}` };
    }
    const match = (topic) => {
        const t = topic.split('/');
        if (hash < 0 ? t.length !== levels.length : t.length < fixed) return false;
        for (let i = 0; i < fixed; i++) if (levels[i] !== '+' && levels[i] !== t[i]) return false;
        return true;
    };
    return { match };
}

module.exports = { classifyTopic, statsTopic, compileTopicFilter, MAX_LEVEL_CHARS, PLATFORM_PREFIX };
