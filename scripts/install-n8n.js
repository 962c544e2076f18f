#!/usr/bin/env node
'use strict';
/*
 * Installs n8n (and, for n8n 2.x on an older system Node, Node 24) into the cache folder, once per version.
 *   node scripts/install-n8n.js            # n8n 2.41.1 (or $N8N_VERSION)
 *   node scripts/install-n8n.js 1.123.81   # another version
 * Prints the path of the n8n binary and the Node that runs it.
 */
const host = require('./lib/n8n-host');

(async () => {
	const version = process.argv[2] || host.n8nVersion();
	const n8n = await host.ensureN8n(version);
	process.stdout.write(`${JSON.stringify({ version: n8n.version, bin: n8n.bin, node: n8n.node.nodeBin })}\n`);
})().catch((error) => {
	process.stderr.write(`${error.stack || error}\n`);
	process.exit(1);
});
