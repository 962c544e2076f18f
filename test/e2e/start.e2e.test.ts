/*
 * `npm start` (scripts/start.js) as a person uses it: it prints the URL, the login and which workflow to open;
 * logging in, opening example 1 and executing it (what the editor's "Execute workflow" button sends) produces
 * images; Ctrl-C stops n8n and the simulator.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { freePort } from '../support/net';
import { sleep, until } from '../support/wait';
import { e2eState, EXAMPLES, KLING_NODE_TYPE } from './harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const host = require('../../scripts/lib/n8n-host');
const AGENT_EXAMPLE_ID: string = require('../../scripts/lib/examples').AGENT_EXAMPLE.id;
const CALLBACK_EXAMPLES = require('../../scripts/lib/examples').CALLBACK_EXAMPLES;
/* eslint-enable @typescript-eslint/no-require-imports */

const EMAIL = 'e2e-owner@example.com';
const PASSWORD = 'E2e-Start-Password-1';

let child: ChildProcess;
let exited: Promise<{ code: number | null; signal: string | null }>;
let stdout = '';
let stderr = '';
let port: number;
let base: string;
let cookie = '';
let demoDir: string;

/** Polls `check` while `npm start` runs; stops at once when it exited, and a timeout shows its output. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
	const checkWhileRunning = async () => {
		if (await check()) return true;
		if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}) while waiting for ${what}:\n${stderr.slice(-4000)}`);
		return false;
	};
	await until(what, checkWhileRunning, timeoutMs, { everyMs: 250, explain: () => `stdout: ${stdout}\nstderr: ${stderr.slice(-4000)}` });
}

async function api(method: string, url: string, body?: unknown): Promise<any> {
	const res = await fetch(`${base}${url}`, {
		method,
		headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const text = await res.text();
	if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.slice(0, 500)}`);
	const setCookie = res.headers.get('set-cookie');
	if (setCookie) cookie = setCookie.split(';')[0];
	return text ? JSON.parse(text) : undefined;
}

function portAnswers(p: number, hostName = '127.0.0.1'): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = net.connect(p, hostName);
		socket.once('connect', () => {
			socket.destroy();
			resolve(true);
		});
		socket.once('error', () => resolve(false));
	});
}

beforeAll(async () => {
	demoDir = path.join(e2eState().workDir, 'demo');
	port = await freePort();
	base = `http://127.0.0.1:${port}`;
	const { COMETAPI_API_KEY, OPENAI_API_KEY, ...env } = process.env;
	void COMETAPI_API_KEY;
	void OPENAI_API_KEY;
	child = spawn(process.execPath, [path.join(host.REPO_ROOT, 'scripts', 'start.js')], {
		cwd: host.REPO_ROOT,
		env: {
			...env,
			NODE_ENV: undefined,
			KLING_DEMO_DIR: demoDir,
			N8N_PORT: String(port),
			N8N_OWNER_EMAIL: EMAIL,
			N8N_OWNER_PASSWORD: PASSWORD,
		},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
	child.stdout!.on('data', (d) => (stdout += d));
	child.stderr!.on('data', (d) => (stderr += d));
	await waitFor('"n8n … is running"', () => stdout.includes('is running at'), 4 * 60 * 1000);
});

afterAll(async () => {
	if (child && child.exitCode === null && child.signalCode === null) {
		child.kill('SIGINT');
		await Promise.race([exited, sleep(30000)]);
		if (child.exitCode === null) child.kill('SIGKILL');
	}
});

test('prints the URL, the login and which workflow to open', () => {
	expect(stdout).toContain(`http://localhost:${port}`);
	expect(stdout).toContain(`${EMAIL} / ${PASSWORD}`);
	expect(stdout).toContain(`http://localhost:${port}/workflow/${EXAMPLES.diskFiles.id}`);
	expect(stdout).toContain('Execute workflow');
	expect(stdout).toContain('simulator');
	expect(stderr).toMatch(/step 7\/7/);
});

test('the owner from the environment can log in and sees the examples, the credential and the node', async () => {
	await api('POST', '/rest/login', { emailOrLdapLoginId: EMAIL, password: PASSWORD });
	expect(cookie).toMatch(/^n8n-auth=/);
	const workflows = (await api('GET', '/rest/workflows')).data.map((w: { id: string }) => w.id).sort();
	// Examples 1–3, example 4 (AI agent), which also has a chat model credential, and the callback pair 5 and 6.
	const callbackIds = Object.values(CALLBACK_EXAMPLES as Record<string, { id: string }>).map((e) => e.id);
	expect(workflows).toEqual([...Object.values(EXAMPLES).map((e) => e.id), AGENT_EXAMPLE_ID, ...callbackIds].sort());
	const credentials = (await api('GET', '/rest/credentials')).data;
	expect(credentials.map((c: { type: string }) => c.type).sort()).toEqual(['cometApiKlingApi', 'httpHeaderAuth', 'openAiApi']);
	const nodeTypes = await api('GET', '/types/nodes.json');
	expect(nodeTypes.map((t: { name: string }) => t.name)).toContain(KLING_NODE_TYPE);
});

test('executing example 1 from the editor produces images, viewable in n8n and written to disk', async () => {
	const { data } = await api('POST', `/rest/workflows/${EXAMPLES.diskFiles.id}/run`, {
		triggerToStartFrom: { name: 'Run manually' },
	});
	const executionId = data.executionId;
	let execution: any;
	await waitFor(
		'the execution to finish',
		async () => {
			execution = (await api('GET', `/rest/executions/${executionId}`)).data;
			return execution.finished || ['success', 'error', 'crashed'].includes(execution.status);
		},
		90000,
	);
	expect(execution.status).toBe('success');
	expect(execution.mode).toBe('manual');
	// Execution data comes "flatted" (n8n's JSON with references); n8n bundles the parser.
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const flatted = require(require.resolve('flatted', { paths: [path.join(host.n8nDir(), 'node_modules', 'n8n')] }));
	const runData = flatted.parse(execution.data).resultData.runData;
	const items = runData['Create Omni Image'][0].data.main[0];
	expect(items).toHaveLength(2);
	for (const item of items) {
		const binary = item.binary.data;
		expect(binary.mimeType).toBe('image/png');
		const res = await fetch(`${base}/rest/binary-data?id=${encodeURIComponent(binary.id)}&action=view`, {
			headers: { cookie },
		});
		expect(res.status).toBe(200);
		expect(res.headers.get('content-type')).toMatch(/^image\/png/);
		const viewed = Buffer.from(await res.arrayBuffer());
		const onDisk = fs.readFileSync(path.join(demoDir, 'files', 'kling-images', binary.fileName));
		expect(viewed.equals(onDisk)).toBe(true);
		expect(viewed.subarray(1, 4).toString()).toBe('PNG');
	}
});

test('example 4 answers a chat message sent the way the editor\'s chat sends it, through the labelled stand-in model', async () => {
	const sessionId = `e2e-${Date.now()}`;
	// "Open chat" registers a test webhook for the session, then posts the message to it.
	const { data } = await api('POST', `/rest/workflows/${AGENT_EXAMPLE_ID}/run`, {
		triggerToStartFrom: { name: 'When chat message received' },
		chatSessionId: sessionId,
	});
	expect(data.waitingForWebhook).toBe(true);
	const res = await fetch(`${base}/webhook-test/${AGENT_EXAMPLE_ID}/${sessionId}`, {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ action: 'sendMessage', sessionId, chatInput: 'A red bicycle leaning on a blue wall' }),
	});
	expect(res.status).toBe(200);
	const { output } = (await res.json()) as { output: string };
	expect(output).toMatch(/stand-in model, not a real LLM/);
	expect(output).toMatch(/OPENAI_API_KEY/);
	expect(output).toMatch(/!\[image 1\]\(http:\/\/127\.0\.0\.2:\d+\/images\//);
	expect(stderr).toMatch(/scripted stand-in at http:\/\/127\.0\.0\.1:\d+\/v1/);
});

test('Ctrl-C stops n8n, the simulator and the stand-in model', async () => {
	const simulatorPort = Number(/simulator at http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);
	expect(simulatorPort).toBeGreaterThan(0);
	expect(await portAnswers(simulatorPort)).toBe(true);
	const modelPort = Number(/stand-in at http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);
	expect(modelPort).toBeGreaterThan(0);
	expect(await portAnswers(modelPort)).toBe(true);
	child.kill('SIGINT');
	const exit = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 30000))]);
	expect(exit).toEqual({ code: 0, signal: null });
	expect(await portAnswers(port)).toBe(false);
	expect(await portAnswers(simulatorPort)).toBe(false);
	expect(await portAnswers(modelPort)).toBe(false);
});
