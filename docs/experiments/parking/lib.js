'use strict';
/*
 * Shared by the parking experiments: a throwaway n8n 2.41.1 user folder with the probe node (./probe) loaded
 * as the community package n8n-nodes-park-probe, one workflow (Webhook trigger → Split Out → Park Probe →
 * After), readers for n8n's SQLite database and the probe's log. Uses the project's cached n8n
 * (scripts/lib/n8n-host.js); nothing here touches the repository's package.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const host = require('../../../scripts/lib/n8n-host');
const { N8nInstance, freePort } = require('../../../scripts/lib/n8n-instance');

const PROBE_DIR = path.join(__dirname, 'probe');
const PROBE_PACKAGE = 'n8n-nodes-park-probe';
const WORKFLOW_ID = 'parkProbeFlow001';
const START_PATH = 'park-start';

function workflow() {
	return {
		id: WORKFLOW_ID,
		name: 'Park probe',
		active: false,
		settings: { executionOrder: 'v1' },
		connections: {
			Start: { main: [[{ node: 'Split', type: 'main', index: 0 }]] },
			Split: { main: [[{ node: 'Park Probe', type: 'main', index: 0 }]] },
			'Park Probe': { main: [[{ node: 'After', type: 'main', index: 0 }]] },
		},
		nodes: [
			{
				id: 'a0000000-0000-4000-8000-000000000001',
				name: 'Start',
				type: 'n8n-nodes-base.webhook',
				typeVersion: 2,
				position: [0, 0],
				webhookId: 'b0000000-0000-4000-8000-000000000001',
				parameters: { httpMethod: 'POST', path: START_PATH, responseMode: 'onReceived', options: {} },
			},
			{
				id: 'a0000000-0000-4000-8000-000000000002',
				name: 'Split',
				type: 'n8n-nodes-base.splitOut',
				typeVersion: 1,
				position: [200, 0],
				parameters: { fieldToSplitOut: 'body.prompts', include: 'selectedOtherFields', fieldsToInclude: 'body.waitSeconds', options: {} },
			},
			{
				id: 'a0000000-0000-4000-8000-000000000003',
				name: 'Park Probe',
				type: `${PROBE_PACKAGE}.parkProbe`,
				typeVersion: 1,
				position: [400, 0],
				parameters: { label: '=label of {{ $json["body.prompts"] }}', waitSeconds: '={{ $json["body.waitSeconds"] }}' },
			},
			{
				id: 'a0000000-0000-4000-8000-000000000004',
				name: 'After',
				type: 'n8n-nodes-base.noOp',
				typeVersion: 1,
				position: [600, 0],
				parameters: {},
			},
		],
	};
}

/** A fresh user folder with the probe installed as a community package and the workflow imported and published. */
async function prepare(userFolder, { env = {}, makeInstance } = {}) {
	host.setQuiet(true);
	const n8n = await host.ensureN8n('2.41.1');
	fs.rmSync(userFolder, { recursive: true, force: true });
	const logFile = path.join(userFolder, 'probe.jsonl');
	const options = { userFolder, env: { PARK_PROBE_LOG: logFile, N8N_LOG_LEVEL: 'info', ...env } };
	const instance = makeInstance ? makeInstance(n8n, options) : new N8nInstance(n8n, options);
	const target = path.join(instance.nodesDir, 'node_modules', PROBE_PACKAGE);
	fs.mkdirSync(target, { recursive: true });
	fs.cpSync(PROBE_DIR, target, { recursive: true });
	fs.writeFileSync(
		path.join(instance.nodesDir, 'package.json'),
		JSON.stringify({ name: 'installed-nodes', private: true, dependencies: { [PROBE_PACKAGE]: '0.0.1' } }),
	);
	await instance.importWorkflows([workflow()]);
	await instance.command(['publish:workflow', `--id=${WORKFLOW_ID}`]);
	return { n8n, instance, logFile, dbFile: path.join(instance.n8nFolder, 'database.sqlite') };
}

function probeLog(logFile) {
	if (!fs.existsSync(logFile)) return [];
	return fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function sql(dbFile, query) {
	const out = spawnSync('sqlite3', ['-json', `file:${dbFile}?mode=ro`, query], { encoding: 'utf8' });
	if (out.status !== 0) throw new Error(out.stderr);
	return out.stdout.trim() ? JSON.parse(out.stdout) : [];
}

let flatted;
function parseFlatted(text, n8nDir) {
	flatted ??= require(require.resolve('flatted', { paths: [path.join(n8nDir, 'node_modules', 'n8n')] }));
	return flatted.parse(text);
}

/** {status, finished, waitTill, data (run data, unflattened), workflowStaticData} of one execution. */
function readExecution(dbFile, n8nDir, id) {
	const [row] = sql(dbFile, `select e.id, e.status, e.finished, e.waitTill, e.stoppedAt, d.data, d.workflowData from execution_entity e join execution_data d on d.executionId = e.id where e.id = ${Number(id)}`);
	if (!row) return undefined;
	const data = parseFlatted(row.data, n8nDir);
	return { id: row.id, status: row.status, finished: row.finished, waitTill: row.waitTill, stoppedAt: row.stoppedAt, data, snapshotStaticData: JSON.parse(row.workflowData).staticData };
}

function workflowStaticData(dbFile) {
	const [row] = sql(dbFile, `select staticData from workflow_entity where id = '${WORKFLOW_ID}'`);
	return row && row.staticData ? JSON.parse(row.staticData) : null;
}

async function post(url, body) {
	const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
	const text = await res.text();
	return { status: res.status, body: text.slice(0, 300) };
}

async function waitFor(what, fn, { timeoutMs = 90000, everyMs = 250 } = {}) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await fn();
		if (value) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, everyMs));
	}
}

/** Starts an execution through the published Webhook trigger and waits until the probe has parked it. */
async function startParkedExecution(baseUrl, ctx, { prompts = ['alpha', 'beta'], waitSeconds = 600 } = {}) {
	const before = probeLog(ctx.logFile).filter((e) => e.kind === 'execute').length;
	const started = await post(`${baseUrl}/webhook/${START_PATH}`, { prompts, waitSeconds });
	if (started.status !== 200) throw new Error(`trigger answered ${started.status}: ${started.body}`);
	const entry = await waitFor('the probe to park', () => probeLog(ctx.logFile).filter((e) => e.kind === 'execute')[before]);
	await waitFor('status waiting in the database', () => readExecution(ctx.dbFile, ctx.n8n.dir, entry.executionId)?.status === 'waiting');
	return entry;
}

function summarize(execution) {
	if (!execution) return execution;
	const runData = execution.data.resultData.runData;
	const runs = (name) => (runData[name] || []).map((r) => ({ executionStatus: r.executionStatus, items: (r.data?.main?.[0] || []).map((i) => i.json), error: r.error?.message }));
	return {
		id: execution.id,
		status: execution.status,
		finished: execution.finished,
		waitTill: execution.waitTill,
		lastNodeExecuted: execution.data.resultData.lastNodeExecuted,
		error: execution.data.resultData.error?.message,
		customData: execution.data.resultData.metadata,
		parkProbeRuns: runs('Park Probe'),
		afterRuns: runs('After'),
		stack: (execution.data.executionData?.nodeExecutionStack || []).map((s) => ({ node: s.node.name, disabled: s.node.disabled, items: (s.data?.main?.[0] || []).length })),
	};
}

module.exports = { prepare, probeLog, sql, readExecution, workflowStaticData, post, waitFor, startParkedExecution, summarize, freePort, WORKFLOW_ID, START_PATH };
