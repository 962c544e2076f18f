#!/usr/bin/env node
'use strict';
// Runs the CometAPI simulator standalone. Prints one JSON line {apiUrl, imageUrl, apiKey}
// on stdout once both servers listen, then serves until SIGINT/SIGTERM.

const { startSimulator } = require('./index');

const USAGE = `Usage: node simulator/cli.js [options]
  --port N               API port (image server uses N+1); random when omitted
  --host ADDR            API bind address (default 127.0.0.1)
  --image-host ADDR      image server bind address (default 127.0.0.2)
  --api-key KEY          accepted API key (default sim-key)
  --task-duration-ms N   time from create to a terminal state (default 1000)
  --image-size-bytes N   pad result images to about N bytes
  --image-format F       png | jpeg (default png)
  --error-style S        http | code200 (default http)
  --parallel-slots N     account parallel-task limit in slots (default unlimited)
  --error-envelope E     kling | comet: envelope of wrong-key errors (default kling)
  --status-spelling S    contract | upper | capitalized | past: task_status words sent (default contract)
  --query-lag-ms N       the query answers what a task was N ms ago (default 0)
  --success-error-null B true | false: success envelopes carry "error": null (default false)`;

// flag -> [option name, parser]
const FLAGS = {
	'--port': ['port', toInt],
	'--host': ['apiHost', String],
	'--image-host': ['imageHost', String],
	'--api-key': ['apiKey', String],
	'--task-duration-ms': ['taskDurationMs', toInt],
	'--image-size-bytes': ['imageSizeBytes', toInt],
	'--image-format': ['imageFormat', String],
	'--error-style': ['errorStyle', String],
	'--parallel-slots': ['parallelSlots', toInt],
	'--error-envelope': ['errorEnvelope', String],
	'--status-spelling': ['statusSpelling', String],
	'--query-lag-ms': ['queryLagMs', toInt],
	'--success-error-null': ['successErrorNull', toBool],
};

function toInt(text) {
	const n = Number(text);
	if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got '${text}'`);
	return n;
}

function toBool(text) {
	if (text === 'true' || text === 'false') return text === 'true';
	throw new Error(`expected true or false, got '${text}'`);
}

function parseArgs(argv) {
	const out = {};
	for (let i = 0; i < argv.length; i++) {
		const [flag, inline] = argv[i].split(/=(.*)/s);
		if (flag === '--help' || flag === '-h') return { help: true };
		const spec = FLAGS[flag];
		if (!spec) throw new Error(`unknown option '${argv[i]}'`);
		const value = inline ?? argv[++i];
		if (value === undefined) throw new Error(`option '${flag}' needs a value`);
		out[spec[0]] = spec[1](value);
	}
	return out;
}

async function main() {
	let args;
	try {
		args = parseArgs(process.argv.slice(2));
	} catch (err) {
		process.stderr.write(`${err.message}\n${USAGE}\n`);
		process.exit(2);
	}
	if (args.help) {
		process.stdout.write(`${USAGE}\n`);
		return;
	}
	const { port, ...options } = args;
	if (port !== undefined) {
		options.apiPort = port;
		options.imagePort = port + 1;
	}
	const sim = await startSimulator(options);
	process.stdout.write(`${JSON.stringify({ apiUrl: sim.apiUrl, imageUrl: sim.imageUrl, apiKey: sim.apiKey })}\n`);

	let stopping = false;
	const stop = () => {
		if (stopping) return;
		stopping = true;
		sim.close().then(() => process.exit(0));
	};
	process.on('SIGINT', stop);
	process.on('SIGTERM', stop);
}

main().catch((err) => {
	process.stderr.write(`simulator failed to start: ${err.message}\n`);
	process.exit(1);
});
