'use strict';
/**
 * Node-RED's own file storage, plus one step at start: seed the encrypted credentials file
 * from flows/credentials.template.json (see credentials-file.js).
 *
 * Why a storage wrapper: settings.js is loaded before Node-RED applies --userDir, so only
 * the storage's init knows where the credentials file goes, and it runs before the flows
 * (and their credentials) are loaded.
 */

const path = require('path');
// Resolved from node-red's own install, the module its runtime uses (one instance).
const localfilesystem = require(require.resolve('@node-red/runtime/lib/storage/localfilesystem', {
    paths: [path.dirname(require.resolve('node-red/package.json'))],
}));
const { seedCredentialsFile } = require('./credentials-file');

/** A storage module for settings.storageModule that seeds credentials from `templateFile`. */
function storageSeedingCredentials({ templateFile, secret, log = console.log }) {
    return {
        ...localfilesystem,
        async init(settings, runtime) {
            await localfilesystem.init(settings, runtime); // resolves settings.userDir
            const written = seedCredentialsFile({
                userDir: settings.userDir,
                flowFile: settings.flowFile,
                templateFile,
                secret,
                pretty: settings.flowFilePretty !== false,
            });
            if (written) log(`[octopus] credentials file ${written} written from ${templateFile}`);
        },
    };
}

module.exports = { storageSeedingCredentials };
