/*
 * The credential's "Test" inside real n8n: n8n started in server mode with the packed package installed as a
 * community package, the credential saved through the REST API (what the editor's Save does) and tested with
 * n8n's own endpoint `POST /rest/credentials/test` (what the editor calls right after saving), against the
 * CometAPI simulator in its different answer styles.
 *
 * One n8n server per n8n version serves every case; each case gets its own simulator.
 * Outbound traffic: n8n runs with HTTP(S)_PROXY pointing at a recording "canary" proxy and NO_PROXY covering
 * loopback, so any request the credential test made to a host other than the (loopback) base URL would show
 * up there; one case checks that the canary really sees such traffic.
 *
 * n8n 1.x (1.123, Node 20, legacy expression engine) is checked too unless KLING_E2E_N8N1=0.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { startSimulator } from '../../simulator';
import type { Simulator, SimulatorOptions } from '../../simulator';
import { e2eState } from './harness';
import { sleep } from '../support/wait';

/* eslint-disable @typescript-eslint/no-require-imports */
const host = require('../../scripts/lib/n8n-host');
const { N8nInstance, freePort } = require('../../scripts/lib/n8n-instance');
const { legacyEnabled } = require('./legacy');
/* eslint-enable @typescript-eslint/no-require-imports */

const CREDENTIAL_TYPE = 'cometApiKlingApi';
const CHECK_PATH = '/kling/v1/images/omni-image/n8n-credential-check';
const EMAIL = 'e2e-credential-owner@example.com';
const PASSWORD = 'E2e-Credential-Password-1';

interface TestResult {
	status: 'OK' | 'Error';
	message: string;
}

/** What one credential test produced: n8n's verdict and what the simulator and the canary saw meanwhile. */
interface CaseRun {
	result: TestResult;
	sim?: Simulator;
	apiKey: string;
	canaryHits: CanaryHit[];
}

interface CanaryHit {
	method: string;
	url: string;
	host?: string;
}

/** A recording forward proxy that forwards nothing: plain requests get 502, CONNECT is refused. */
async function startCanary(): Promise<{ url: string; hits: CanaryHit[]; close(): Promise<void> }> {
	const hits: CanaryHit[] = [];
	const server = http.createServer((req, res) => {
		hits.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host });
		req.resume();
		res.writeHead(502, { 'content-type': 'text/plain' }).end('canary proxy: outbound request blocked');
	});
	server.on('connect', (req, socket) => {
		hits.push({ method: 'CONNECT', url: req.url ?? '', host: req.headers.host });
		socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as { port: number };
	return {
		url: `http://127.0.0.1:${port}`,
		hits,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

/** A started n8n (server mode) with the package installed, logged in as the owner. */
class Server {
	private cookie = '';
	private counter = 0;
	readonly log: string[] = [];

	private constructor(
		readonly version: string,
		readonly instance: any,
		readonly handle: { url: string; stop(): Promise<void>; output(): string },
		readonly base: string,
		readonly canary: Awaited<ReturnType<typeof startCanary>>,
	) {}

	static async start(version: string): Promise<Server> {
		const state = e2eState();
		host.setQuiet(true);
		const n8n = await host.ensureN8n(version);
		const userFolder = fs.mkdtempSync(path.join(state.workDir, `credential-${version}-`));
		const instance = new N8nInstance(n8n, { userFolder });
		await instance.installPackage(state.tarball);
		const canary = await startCanary();
		const port = await freePort();
		const major = Number(version.split('.')[0]);
		const proxyEnv = {
			HTTP_PROXY: canary.url,
			HTTPS_PROXY: canary.url,
			ALL_PROXY: canary.url,
			http_proxy: canary.url,
			https_proxy: canary.url,
			all_proxy: canary.url,
			NO_PROXY: '127.0.0.1,localhost',
			no_proxy: '127.0.0.1,localhost',
		};
		let handle;
		try {
			handle = await instance.start({
				port,
				// n8n 2.x takes the owner from the environment; 1.x gets it through /rest/owner/setup below.
				...(major >= 2 ? { ownerEmail: EMAIL, ownerPassword: PASSWORD } : {}),
				echo: process.env.KLING_E2E_ECHO === '1',
				env: proxyEnv,
			});
		} catch (error) {
			await canary.close();
			throw error;
		}
		const server = new Server(version, instance, handle, `http://127.0.0.1:${port}`, canary);
		try {
			// n8n 1.x answers /healthz/readiness before its REST controllers are registered.
			await server.waitForRest();
			if (major >= 2) await server.api('POST', '/rest/login', { emailOrLdapLoginId: EMAIL, password: PASSWORD });
			else {
				await server.api('POST', '/rest/owner/setup', {
					email: EMAIL,
					firstName: 'E2E',
					lastName: 'Owner',
					password: PASSWORD,
				});
			}
			if (!server.cookie) throw new Error('n8n set no auth cookie');
		} catch (error) {
			await server.stop();
			throw error;
		}
		return server;
	}

	async waitForRest(timeoutMs = 60000): Promise<void> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			try {
				const res = await fetch(`${this.base}/rest/settings`);
				if (res.ok) return;
			} catch {}
			if (Date.now() > deadline) throw new Error(`n8n's REST API did not answer:\n${this.handle.output().slice(-4000)}`);
			await sleep(250);
		}
	}

	async api(method: string, url: string, body?: unknown): Promise<any> {
		const res = await fetch(`${this.base}${url}`, {
			method,
			headers: { 'content-type': 'application/json', ...(this.cookie ? { cookie: this.cookie } : {}) },
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await res.text();
		if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.slice(0, 500)}`);
		const setCookie = res.headers.get('set-cookie');
		if (setCookie) this.cookie = setCookie.split(';')[0];
		return text ? JSON.parse(text) : undefined;
	}

	/**
	 * What the editor does: save the credential (POST /rest/credentials), then test it
	 * (POST /rest/credentials/test with the id and the form's data). With `redacted`, the test sends the data
	 * as n8n hands it back to the editor (the key blanked), as when an existing credential is retested.
	 */
	async testCredential(data: { apiKey: string; baseUrl: string }, { redacted = false } = {}): Promise<TestResult> {
		const name = `CometAPI e2e ${++this.counter}`;
		const created = (await this.api('POST', '/rest/credentials', { name, type: CREDENTIAL_TYPE, data })).data;
		let sent: Record<string, unknown> = data;
		if (redacted) {
			sent = (await this.api('GET', `/rest/credentials/${created.id}?includeData=true`)).data.data;
			if (sent.apiKey === data.apiKey) throw new Error('n8n handed the API key back to the editor unredacted');
		}
		const res = await this.api('POST', '/rest/credentials/test', {
			credentials: { id: created.id, name, type: CREDENTIAL_TYPE, data: sent },
		});
		const result: TestResult = res.data;
		this.log.push(`n8n ${this.version}: ${JSON.stringify(result)}`);
		return result;
	}

	/** One case: a fresh simulator (unless `sim` is false), the credential saved and tested. */
	async runCase(
		simOptions: SimulatorOptions | false,
		credential: (sim: Simulator | undefined, validKey: string) => { apiKey: string; baseUrl: string },
		options: { redacted?: boolean } = {},
	): Promise<CaseRun> {
		const validKey = `sk-e2e-${crypto.randomBytes(16).toString('hex')}`;
		const sim = simOptions === false ? undefined : await startSimulator({ ...simOptions, apiKey: validKey });
		try {
			const data = credential(sim, validKey);
			const hitsBefore = this.canary.hits.length;
			const result = await this.testCredential(data, options);
			return { result, sim, apiKey: data.apiKey, canaryHits: this.canary.hits.slice(hitsBefore) };
		} finally {
			await sim?.close();
		}
	}

	async stop(): Promise<void> {
		await Promise.allSettled([this.handle.stop(), this.canary.close()]);
	}
}

function wrongKey(): string {
	return `sk-wrong-${crypto.randomBytes(8).toString('hex')}`;
}

/**
 * The request a credential test should make: GET of the check path on the simulator's API server, with the key
 * as Bearer token, and nothing through the canary proxy. n8n's httpRequestWithAuthentication retries once after
 * a 401 (its "refresh the credential and retry" path, taken for every credential type), so a 401 comes twice.
 */
function expectOnlyCheckRequests(run: CaseRun, count = 1): void {
	const requests = run.sim!.requests;
	expect(requests.map((r) => `${r.server} ${r.method} ${r.path}`)).toEqual(
		Array.from({ length: count }, () => `api GET ${CHECK_PATH}`),
	);
	for (const request of requests) expect(request.headers.authorization).toBe(`Bearer ${run.apiKey}`);
	expect(run.canaryHits).toEqual([]);
}

/** What the test says for a Base URL whose path the host does not serve (the credential's fixed text). */
const WRONG_PATH = /^The Base URL does not lead to CometAPI's Kling API: .*set the Base URL to the host alone, without a path \(for CometAPI: https:\/\/api\.cometapi\.com; a final \/v1 is fine\)\.$/;

/** Base URLs ending in `/v1` (CometAPI's documented base URL for its OpenAI-compatible API) test the host's root. */
async function expectV1BaseUrlsPass(server: Server): Promise<void> {
	for (const suffix of ['/v1', '/v1/']) {
		const run = await server.runCase({ taskNotExistStatus: 404 }, (sim, key) => ({ apiKey: key, baseUrl: `${sim!.apiUrl}${suffix}` }));
		expect(run.result).toEqual({ status: 'OK', message: 'Connection successful!' });
		expectOnlyCheckRequests(run);
	}
}

/** A path the host does not serve: the simulator answers it like a web host (HTTP 404, an HTML page). */
async function expectWrongPathFails(server: Server): Promise<void> {
	const run = await server.runCase({ taskNotExistStatus: 404 }, (sim, key) => ({ apiKey: key, baseUrl: `${sim!.apiUrl}/api` }));
	expect(run.sim!.requests.map((r) => `${r.path} ${r.status} ${String(r.headers.authorization === `Bearer ${run.apiKey}`)}`)).toEqual([
		`/api${CHECK_PATH} 404 true`,
	]);
	expect(run.result.status).toBe('Error');
	expect(run.result.message).toMatch(WRONG_PATH);
}

function closedPortUrl(port: number): string {
	return `http://127.0.0.1:${port}`;
}

// ---------------------------------------------------------------------------------------------------------
// n8n 2.x

describe(`credential test in n8n ${host.n8nVersion()} (server mode, POST /rest/credentials/test)`, () => {
	let server: Server;
	let started = 0;

	beforeAll(async () => {
		started = Date.now();
		server = await Server.start(e2eState().versions[0]);
	});

	afterAll(async () => {
		if (server) process.stderr.write(`${server.log.join('\n')}\n`);
		await server?.stop();
		process.stderr.write(`credential e2e (n8n 2.x part) took ${host.formatSeconds(Date.now() - started)}\n`);
	});

	test('1. valid key, task_not_exist as HTTP 404 → OK', async () => {
		const run = await server.runCase({ taskNotExistStatus: 404 }, (sim, key) => ({ apiKey: key, baseUrl: sim!.apiUrl }));
		expect(run.result).toEqual({ status: 'OK', message: 'Connection successful!' });
		expect(run.sim!.requests[0].status).toBe(404);
		expectOnlyCheckRequests(run);
	});

	test('2. valid key, task_not_exist as HTTP 400 → OK', async () => {
		const run = await server.runCase({ taskNotExistStatus: 400 }, (sim, key) => ({ apiKey: key, baseUrl: sim!.apiUrl }));
		expect(run.result.status).toBe('OK');
		expect(run.sim!.requests[0].status).toBe(400);
		expectOnlyCheckRequests(run);
	});

	test('3. valid key, task_not_exist as HTTP 200 with a non-zero code → OK', async () => {
		const run = await server.runCase({ errorStyle: 'code200' }, (sim, key) => ({ apiKey: key, baseUrl: sim!.apiUrl }));
		expect(run.result.status).toBe('OK');
		expect(run.sim!.requests[0].status).toBe(200);
		expectOnlyCheckRequests(run);
	});

	test('4. wrong key (HTTP 401) → Error that names the key and 401', async () => {
		const run = await server.runCase({}, (sim) => ({ apiKey: wrongKey(), baseUrl: sim!.apiUrl }));
		expect(run.result.status).toBe('Error');
		expect(run.result.message).toMatch(/API key/);
		expect(run.result.message).toMatch(/401/);
		expect(run.sim!.requests.map((r) => r.status)).toEqual([401, 401]);
		expectOnlyCheckRequests(run, 2);
	});

	test('5. wrong key answered as HTTP 200 with code 401 (errorStyle code200) → Error', async () => {
		const run = await server.runCase({ errorStyle: 'code200' }, (sim) => ({ apiKey: wrongKey(), baseUrl: sim!.apiUrl }));
		expect(run.sim!.requests[0].status).toBe(200);
		expectOnlyCheckRequests(run);
		// Caught by the credential's responseSuccessBody rule on the body's `code`.
		expect(run.result).toEqual({ status: 'Error', message: 'CometAPI rejected the API key (code 401). Check the key.' });
	});

	test('5b. wrong key answered in CometAPI\'s own envelope ({error: {…}}, HTTP 401) → Error that names the key', async () => {
		const run = await server.runCase({ errorEnvelope: 'comet' }, (sim) => ({ apiKey: wrongKey(), baseUrl: sim!.apiUrl }));
		expect(run.sim!.requests[0].status).toBe(401);
		expect(run.result).toEqual({ status: 'Error', message: 'CometAPI rejected the API key (HTTP 401). Check the key.' });
	});

	test('5c. an account without quota (HTTP 403 insufficient_user_quota) → Error that names both causes', async () => {
		const run = await server.runCase({}, (sim, key) => {
			sim!.addFault({ route: 'query', type: 'cometError', status: 403, message: 'user quota is not enough', code: 'insufficient_user_quota' });
			return { apiKey: key, baseUrl: sim!.apiUrl };
		});
		expect(run.sim!.requests[0].status).toBe(403);
		expect(run.result.status).toBe('Error');
		expect(run.result.message).toMatch(/HTTP 403.*no quota left.*CometAPI balance/);
	});

	test('6. unreachable base URL (nothing listening) → Error', async () => {
		const port = await freePort();
		const run = await server.runCase(false, (_sim, key) => ({ apiKey: key, baseUrl: closedPortUrl(port) }));
		expect(run.result.status).toBe('Error');
		expect(run.result.message).toMatch(/ECONNREFUSED|connect|refused/i);
		expect(run.canaryHits).toEqual([]);
	});

	test('7. the test reaches only the base URL host, with Authorization: Bearer <key>', async () => {
		// Cases 1–5 each checked exactly one request on the simulator's API server and nothing at the canary;
		// here also a retest of the saved credential (the editor sends the key redacted, n8n fills it in).
		const run = await server.runCase(
			{ taskNotExistStatus: 404 },
			(sim, key) => ({ apiKey: key, baseUrl: `${sim!.apiUrl}/` }),
			{ redacted: true },
		);
		expect(run.result.status).toBe('OK');
		expectOnlyCheckRequests(run);
		expect(run.sim!.imageRequests()).toEqual([]);
		// The canary does see outbound traffic: a base URL on another host goes through the proxy (and fails).
		const other = await server.runCase(false, (_sim, key) => ({ apiKey: key, baseUrl: 'http://kling-e2e-elsewhere.invalid' }));
		expect(other.result.status).toBe('Error');
		expect(other.canaryHits.length).toBeGreaterThan(0);
		expect(other.canaryHits[0].url).toContain('kling-e2e-elsewhere.invalid');
		expect(other.canaryHits[0].url).toContain(CHECK_PATH);
	});

	test('8. a Base URL ending in /v1 (as CometAPI documents it) → OK, tested at the host\'s root', async () => {
		await expectV1BaseUrlsPass(server);
	});

	test('9. a Base URL with a path the host does not serve (HTTP 404 web page) → Error saying what to change', async () => {
		await expectWrongPathFails(server);
	});

	test('server errors (HTTP 500, 503) → Error', async () => {
		for (const status of [500, 503]) {
			const run = await server.runCase({}, (sim, key) => {
				sim!.addFault({ route: 'query', type: 'status', status });
				return { apiKey: key, baseUrl: sim!.apiUrl };
			});
			expect(run.sim!.requests[0].status).toBe(status);
			expect(run.result.status).toBe('Error');
			expectOnlyCheckRequests(run);
		}
	});
});

// ---------------------------------------------------------------------------------------------------------
// n8n 1.x: the `except` list of ignoreHttpStatusErrors does not exist there (any truthy value ignores every
// status, so a 401 is not an error and the responseCode rules never fire; no retry either). The credential's
// responseSuccessBody rule on the body's `code` catches the wrong key instead.

const describeLegacy = legacyEnabled() ? describe : describe.skip;

describeLegacy(`credential test in n8n ${host.LEGACY_N8N_VERSION} (Node 20, legacy expression engine)`, () => {
	let server: Server;
	let legacyStarted = 0;

	beforeAll(async () => {
		legacyStarted = Date.now();
		server = await Server.start(host.LEGACY_N8N_VERSION);
	});

	afterAll(async () => {
		if (server) process.stderr.write(`${server.log.join('\n')}\n`);
		await server?.stop();
		process.stderr.write(`credential e2e (n8n 1.x part) took ${host.formatSeconds(Date.now() - legacyStarted)}\n`);
	});

	test('1. valid key, task_not_exist as HTTP 404 → OK', async () => {
		const run = await server.runCase({ taskNotExistStatus: 404 }, (sim, key) => ({ apiKey: key, baseUrl: sim!.apiUrl }));
		expect(run.result.status).toBe('OK');
		expectOnlyCheckRequests(run);
	});

	test('4. wrong key (HTTP 401 with code 401 in the body) → Error', async () => {
		const run = await server.runCase({}, (sim) => ({ apiKey: wrongKey(), baseUrl: sim!.apiUrl }));
		const statuses = run.sim!.requests.map((r) => r.status);
		expect(statuses[0]).toBe(401);
		expectOnlyCheckRequests(run, statuses.length);
		expect(run.result).toEqual({ status: 'Error', message: 'CometAPI rejected the API key (code 401). Check the key.' });
	});

	test('8. a Base URL ending in /v1 → OK (the expression that cuts it runs in the legacy engine too)', async () => {
		await expectV1BaseUrlsPass(server);
	});

	test('9. a Base URL with a path the host does not serve → Error saying what to change', async () => {
		await expectWrongPathFails(server);
	});
});
