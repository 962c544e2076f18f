#!/usr/bin/env node
'use strict';
/*
 * `npm start`: real n8n with this package installed, the example workflows imported and a credential ready.
 *
 *   1. builds the package (installing the dev dependencies first on a fresh clone);
 *   2. gets n8n (and, for n8n 2.x on an older system Node, Node 24) into the cache folder, once;
 *   3. packs the package and installs the tarball into n8n as a community package;
 *   4. starts the CometAPI simulator on loopback, or uses the real API when COMETAPI_API_KEY is set;
 *   5. starts a loopback upload endpoint for example 3;
 *   6. imports the credential and the example workflows;
 *   7. starts n8n on localhost with an owner account from the environment, and prints where to go.
 * Ctrl-C stops everything it started.
 *
 * `npm start -- --queue`: the same in n8n's queue mode (scripts/lib/queue-mode.js): Redis and a throwaway
 * Postgres cluster on loopback (installed with apt-get when missing), an n8n main and two `n8n worker`
 * processes (concurrency 5), binary data in the database; the database starts empty on every run.
 *
 * Environment:
 *   COMETAPI_API_KEY     use the real CometAPI with this key (default: the local simulator)
 *   COMETAPI_BASE_URL    base URL for the real API (default https://api.cometapi.com)
 *   OPENAI_API_KEY       the chat model of example 4 (AI agent) uses this OpenAI-compatible endpoint
 *                        (default: a scripted stand-in on loopback, scripts/lib/fake-chat-model.js)
 *   OPENAI_BASE_URL      its base URL (default https://api.openai.com/v1); OPENAI_MODEL its model (default gpt-4o-mini)
 *   N8N_PORT             editor port (default 5678)
 *   N8N_OWNER_EMAIL      owner login (default demo@example.com)
 *   N8N_OWNER_PASSWORD   owner password (default KlingDemo-2026)
 *   N8N_VERSION          n8n version (default 2.41.1; 1.123.81 is the last 1.x)
 *   KLING_DEMO_DIR       where n8n keeps its data, files and uploads (default .n8n-demo in the repository)
 *   KLING_N8N_CACHE_DIR  where n8n is installed (default ${XDG_CACHE_HOME:-~/.cache}/n8n-nodes-cometapi-kling)
 */
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');

const host = require('./lib/n8n-host');
const { N8nInstance, buildPackage, packPackage, stopProcessGroup } = require('./lib/n8n-instance');
const examples = require('./lib/examples');
const { startUploadReceiver } = require('./lib/upload-receiver');
const { startFakeChatModel } = require('./lib/fake-chat-model');
const { QueueCluster } = require('./lib/queue-mode');

const { REPO_ROOT, log, run } = host;
const STEPS = 7;
const SIMULATOR_TASK_DURATION_MS = 6000;
const SIMULATOR_POLL_INTERVAL_S = 2;

const cleanups = [];
let stopping = false;

function step(n, text) {
	log(`step ${n}/${STEPS}: ${text}`);
}

async function portIsFree(port) {
	return new Promise((resolve) => {
		const server = net.createServer();
		server.once('error', () => resolve(false));
		server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
	});
}

/** Starts simulator/cli.js in its own process group; resolves with {apiUrl, imageUrl, apiKey}. */
async function startSimulatorProcess(apiKey) {
	const cli = path.join(REPO_ROOT, 'simulator', 'cli.js');
	if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: the simulator is needed when COMETAPI_API_KEY is not set`);
	const child = spawn(
		process.execPath,
		[cli, '--api-key', apiKey, '--task-duration-ms', String(SIMULATOR_TASK_DURATION_MS)],
		{ cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
	);
	const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
	cleanups.push(() => stopProcessGroup(child, exited, 3000));
	let stderr = '';
	child.stderr.on('data', (d) => (stderr += d));
	const lines = readline.createInterface({ input: child.stdout });
	const first = await Promise.race([
		new Promise((resolve) => lines.once('line', resolve)),
		exited.then((e) => {
			throw new Error(`the simulator exited (${e.code ?? e.signal}): ${stderr}`);
		}),
	]);
	return JSON.parse(first);
}

async function main() {
	const version = host.n8nVersion();
	const port = Number(process.env.N8N_PORT || 5678);
	const ownerEmail = process.env.N8N_OWNER_EMAIL || 'demo@example.com';
	const ownerPassword = process.env.N8N_OWNER_PASSWORD || 'KlingDemo-2026';
	const demoDir = path.resolve(process.env.KLING_DEMO_DIR || path.join(REPO_ROOT, '.n8n-demo'));
	const realKey = process.env.COMETAPI_API_KEY;
	const queueMode = process.argv.slice(2).includes('--queue');

	if (!(await portIsFree(port))) {
		throw new Error(`port ${port} is in use: stop what runs there or set N8N_PORT to another port`);
	}

	step(1, 'building the package');
	if (!fs.existsSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'tsc'))) {
		log('the dev dependencies are not installed: running npm ci first');
		await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: REPO_ROOT, echo: true });
	}
	await buildPackage();

	step(2, `getting n8n ${version}`);
	const n8n = await host.ensureN8n(version);

	step(3, `installing ${host.PACKAGE_NAME} into n8n as a community package`);
	let instance;
	let cluster;
	if (queueMode) {
		log('queue mode: starting Redis and Postgres');
		cluster = new QueueCluster(n8n, { workDir: path.join(demoDir, 'queue'), filesDir: path.join(demoDir, 'files') });
		cleanups.unshift(() => cluster.stop());
		instance = await cluster.startServices();
	} else {
		instance = new N8nInstance(n8n, {
			userFolder: path.join(demoDir, `n8n-${n8n.version.split('.')[0]}.x`),
			filesDir: path.join(demoDir, 'files'),
		});
	}
	const tarball = await packPackage(path.join(demoDir, 'pack'), { build: false });
	await instance.installPackage(tarball);
	log(`installed into ${instance.nodesDir}`);

	step(4, realKey ? 'using the real CometAPI' : 'starting the CometAPI simulator');
	let api;
	if (realKey) {
		api = { apiUrl: process.env.COMETAPI_BASE_URL || 'https://api.cometapi.com', apiKey: realKey };
		log(`COMETAPI_API_KEY is set: the workflows call ${api.apiUrl} and each image costs credits`);
	} else {
		api = await startSimulatorProcess(`sim-${crypto.randomBytes(12).toString('hex')}`);
		log(`simulator at ${api.apiUrl} (images from ${api.imageUrl}); set COMETAPI_API_KEY to use the real API`);
	}

	step(5, 'starting the upload endpoint for example 3');
	const uploadsDir = path.join(demoDir, 'uploads');
	const receiver = await startUploadReceiver({
		saveDir: uploadsDir,
		onUpload: (upload, saved) => {
			for (const [i, file] of upload.files.entries()) {
				log(`upload received: ${file.fileName} (${file.mimeType}, ${file.bytes.length} bytes) → ${saved[i]}`);
			}
		},
	});
	cleanups.push(() => receiver.close());
	log(`upload endpoint ${receiver.url}; files are saved in ${uploadsDir}`);

	step(6, 'importing the credential and the example workflows');
	const outputFolder = path.join(instance.filesDir, 'kling-images');
	fs.mkdirSync(path.join(outputFolder, 'batch'), { recursive: true });
	// Example 4's chat model: the user's OpenAI-compatible endpoint, or the scripted stand-in.
	let chatModel;
	if (process.env.OPENAI_API_KEY) {
		chatModel = {
			url: process.env.OPENAI_BASE_URL || 'https://api.openai.com/v1',
			apiKey: process.env.OPENAI_API_KEY,
			model: process.env.OPENAI_MODEL || 'gpt-4o-mini',
		};
		log(`OPENAI_API_KEY is set: example 4's agent uses ${chatModel.model} at ${chatModel.url}`);
	} else {
		const fake = await startFakeChatModel({ apiKey: `stand-in-${crypto.randomBytes(8).toString('hex')}` });
		cleanups.push(() => fake.close());
		chatModel = { url: fake.url, apiKey: fake.apiKey, model: fake.model, standIn: true };
		log(`example 4's chat model: a scripted stand-in at ${fake.url} (set OPENAI_API_KEY to use a real model)`);
	}
	// Example 5's webhook takes this header; made here, so no two installs share it.
	const batchStartKey = crypto.randomBytes(18).toString('base64url');
	await instance.importCredentials([
		examples.credentialEntry({ apiKey: api.apiKey, baseUrl: api.apiUrl }),
		examples.openAiCredentialEntry({ apiKey: chatModel.apiKey, url: chatModel.url }),
		examples.batchStartCredentialEntry(batchStartKey),
	]);
	const workflows = examples.configuredExamples({
		outputFolder,
		uploadUrl: receiver.url,
		// The simulator finishes a task in a few seconds; the real API advises polling every 20–30 s.
		pollInterval: realKey ? undefined : SIMULATOR_POLL_INTERVAL_S,
	});
	workflows.push(
		examples.configuredAgentExample({ model: chatModel.model, pollInterval: realKey ? undefined : SIMULATOR_POLL_INTERVAL_S }),
	);
	// Examples 5 and 6: a batch that only creates tasks, with example 6's trigger URL on this n8n as callback.
	fs.mkdirSync(path.join(outputFolder, 'callback'), { recursive: true });
	const callbackWorkflows = examples.configuredCallbackExamples({
		n8nUrl: `http://localhost:${port}`,
		outputFolder,
		// Against the simulator, example 5 collects what the trigger missed after one minute, not thirty.
		...(realKey ? {} : { fallbackAfterMinutes: 1, pollInterval: SIMULATOR_POLL_INTERVAL_S }),
	});
	workflows.push(...callbackWorkflows);
	await instance.importWorkflows(workflows);
	// Published, so that the trigger takes callbacks and the batch's webhook and schedule are live.
	for (const workflow of callbackWorkflows) await instance.command(['publish:workflow', `--id=${workflow.id}`]);
	log(
		`imported ${workflows.length} workflows and the credentials "${examples.CREDENTIAL.name}" and "${examples.OPENAI_CREDENTIAL.name}"`,
	);

	step(7, `starting n8n ${n8n.version} on http://localhost:${port}${queueMode ? ' (a main, then two workers)' : ''}`);
	let logFile = path.join(demoDir, 'n8n.log');
	let server;
	if (queueMode) {
		server = await cluster.startN8n({ port, ownerEmail, ownerPassword });
		logFile = path.join(cluster.workDir, 'logs');
	} else {
		const logStream = fs.createWriteStream(logFile, { flags: 'a' });
		server = await instance.start({ port, ownerEmail, ownerPassword, echo: false });
		cleanups.unshift(() => server.stop());
		logStream.write(server.output());
		server.child.stdout.pipe(logStream);
		server.child.stderr.pipe(logStream);
	}

	const url = server.url;
	const [first, second, third, fourth, fifth, sixth] = workflows;
	const rel = (p) => {
		const relative = path.relative(process.cwd(), p);
		return relative && !relative.startsWith('..') ? relative : p;
	};
	process.stdout.write(
		[
			'',
			`n8n ${n8n.version} is running at ${url}  (Node ${n8n.node.version}; log: ${rel(logFile)})`,
			`  Log in with ${ownerEmail} / ${ownerPassword}  (N8N_OWNER_EMAIL / N8N_OWNER_PASSWORD)`,
			...(queueMode
				? [
						`  Queue mode: this main takes webhooks and the editor; ${cluster.workers.map((w) => w.name).join(' and ')} (concurrency ${cluster.concurrency}) run the executions;`,
						`    Redis on 127.0.0.1:${cluster.redis.port}, PostgreSQL on 127.0.0.1:${cluster.postgres.port}, binary data in the database.`,
					]
				: []),
			`  CometAPI: ${realKey ? `the real API at ${api.apiUrl}` : `the local simulator at ${api.apiUrl} (set COMETAPI_API_KEY for the real API)`}`,
			'',
			`  Open "${first.name}"`,
			`    ${url}/workflow/${first.id}`,
			'  and press "Execute workflow": the images appear in the output of "Create Omni Image",',
			`  and the files in ${rel(outputFolder)}.`,
			'',
			`  Also: "${second.name}"  ${url}/workflow/${second.id}`,
			`        "${third.name}"  ${url}/workflow/${third.id}  (uploads land in ${rel(uploadsDir)})`,
			`        "${fourth.name}"  ${url}/workflow/${fourth.id}`,
			`          press "Open chat" and ask for an image; the chat model is ${
				chatModel.standIn ? 'a scripted stand-in, not a real LLM (set OPENAI_API_KEY to use yours)' : `${chatModel.model} at ${chatModel.url}`
			}`,
			`        "${fifth.name}"  ${url}/workflow/${fifth.id}`,
			`          press "Execute workflow" (or POST to ${url}/webhook/${examples.BATCH_START_PATH}`,
			`          with the header "${examples.BATCH_START_HEADER}: ${batchStartKey}"): it creates the tasks and answers,`,
			`          then after ${realKey ? 30 : 1} min collects any task whose callback never came;`,
			`          "${sixth.name}" (published) gets each finished task by callback and writes ${rel(path.join(outputFolder, 'callback'))}`,
			'',
			'  Press Ctrl-C to stop n8n and everything else this command started.',
			'',
		].join('\n'),
	);

	const exit = await server.exited;
	if (!stopping) {
		log(`n8n exited on its own (${exit.code ?? exit.signal}); see ${rel(logFile)}`);
		await shutdown(1);
	}
}

async function shutdown(code) {
	if (stopping) return;
	stopping = true;
	for (const cleanup of cleanups) {
		try {
			await cleanup();
		} catch (error) {
			log(`while stopping: ${error.message}`);
		}
	}
	process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
	process.on(signal, () => {
		if (stopping) return;
		log(`${signal}: stopping n8n and the services started for it …`);
		shutdown(0);
	});
}

main().catch(async (error) => {
	process.stderr.write(`\nnpm start failed: ${error.message}\n`);
	await shutdown(1);
});
