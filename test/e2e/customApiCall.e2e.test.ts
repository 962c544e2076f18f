/*
 * "Custom API Call" as n8n means it (its notice in the node's form: "Use the HTTP Request node to make a custom
 * API call. We'll take care of the … auth for you."): an HTTP Request node (n8n-nodes-base.httpRequest 4.5,
 * the default version of n8n 2.41.1) with Authentication "Predefined Credential Type" and the package's
 * credential "CometAPI API" (`cometApiKlingApi`), run with `n8n execute` in real n8n against the simulator.
 *
 * The credential has `authenticate`, so n8n 2.41 also gives it the fields "Allowed HTTP Request Domains"
 * (All, the default / Specific Domains / None) and "Allowed Domains" (n8n-workflow's
 * credential-domain-restrictions.js). With All the HTTP Request node sends the key to whatever URL it is
 * given; with Specific Domains it refuses other hosts before sending anything. Both are checked here against a
 * second loopback host (the simulator's echo server on 127.0.0.3).
 */
import { startEchoServer } from '../../simulator';
import type { EchoServer } from '../../simulator';
import { E2EInstance, ExecResult, expectSuccess } from './harness';
import { sleep } from '../support/wait';

/* eslint-disable @typescript-eslint/no-require-imports */
const examples = require('../../scripts/lib/examples');
/* eslint-enable @typescript-eslint/no-require-imports */

const OMNI_IMAGE = '/kling/v1/images/omni-image';
/** The credential E2EInstance imports (Allowed HTTP Request Domains not set: All). */
const OPEN_CREDENTIAL: { id: string; name: string; type: string } = examples.CREDENTIAL;
/** The same key and base URL, restricted to the API's host. */
const RESTRICTED_CREDENTIAL = { id: 'cometApiKlingCustomCall', name: 'CometAPI (API host only)', type: OPEN_CREDENTIAL.type };
const GET_TASK = 'Get task (HTTP Request)';
const OTHER_HOST = 'Other host (HTTP Request)';

let e2e: E2EInstance;
let echo: EchoServer;
let taskId: string;

/** Manual Trigger → GET the task at the API → GET the echo server, both HTTP Request nodes with `credential`. */
function workflow(id: string, credential: { id: string; name: string }): any {
	const httpRequest = (nodeId: string, name: string, url: string, x: number) => ({
		id: nodeId,
		name,
		type: 'n8n-nodes-base.httpRequest',
		typeVersion: 4.5,
		position: [x, 0],
		parameters: {
			method: 'GET',
			url,
			authentication: 'predefinedCredentialType',
			nodeCredentialType: OPEN_CREDENTIAL.type,
			options: {},
		},
		credentials: { [OPEN_CREDENTIAL.type]: credential },
	});
	return {
		id,
		name: `Custom API Call: HTTP Request with CometAPI API (${credential.name})`,
		active: false,
		nodes: [
			{ id: 'c1', name: 'Run manually', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			httpRequest('c2', GET_TASK, `${e2e.sim.apiUrl}${OMNI_IMAGE}/${taskId}`, 220),
			httpRequest('c3', OTHER_HOST, `${echo.url}/elsewhere`, 440),
		],
		connections: {
			'Run manually': { main: [[{ node: GET_TASK, type: 'main', index: 0 }]] },
			[GET_TASK]: { main: [[{ node: OTHER_HOST, type: 'main', index: 0 }]] },
		},
		settings: { executionOrder: 'v1' },
	};
}

beforeAll(async () => {
	e2e = await E2EInstance.create('custom-api-call');
	echo = await startEchoServer({ host: '127.0.0.3' });
	// A task created straight at the simulator, finished before n8n asks for it.
	const created = await fetch(`${e2e.sim.apiUrl}${OMNI_IMAGE}`, {
		method: 'POST',
		headers: { authorization: `Bearer ${e2e.apiKey}`, 'content-type': 'application/json' },
		body: JSON.stringify({ prompt: 'A paper crane on a desk' }),
	});
	taskId = ((await created.json()) as { data: { task_id: string } }).data.task_id;
	const deadline = Date.now() + 20_000;
	while (e2e.sim.taskStatus(taskId) !== 'succeed' && Date.now() < deadline) await sleep(100);
	await e2e.instance.importCredentials([
		{
			...RESTRICTED_CREDENTIAL,
			data: { apiKey: e2e.apiKey, baseUrl: e2e.sim.apiUrl, allowedHttpRequestDomains: 'domains', allowedDomains: '127.0.0.1' },
		},
	]);
	await e2e.importWorkflows([workflow('customApiCallOpen', OPEN_CREDENTIAL), workflow('customApiCallRestricted', RESTRICTED_CREDENTIAL)]);
});

afterAll(async () => {
	await Promise.allSettled([e2e?.close(), echo?.close()]);
});

/** Runs a workflow; returns the run and the task queries and echo requests it caused. */
async function run(workflowId: string) {
	const queriesBefore = e2e.sim.apiRequests('query').length;
	const echoBefore = echo.requests.length;
	const result: ExecResult = await e2e.execute(workflowId);
	return { result, queries: e2e.sim.apiRequests('query').slice(queriesBefore), echoed: echo.requests.slice(echoBefore) };
}

test('an HTTP Request node with Predefined Credential Type → CometAPI API calls the API with the key and outputs the task; by default it sends the key to any other host too', async () => {
	const { result, queries, echoed } = await run('customApiCallOpen');
	expectSuccess(result);

	expect(queries.map((q) => ({ method: q.method, path: q.path, authorization: q.headers.authorization, status: q.status }))).toEqual([
		{ method: 'GET', path: `${OMNI_IMAGE}/${taskId}`, authorization: `Bearer ${e2e.apiKey}`, status: 200 },
	]);
	const [item, ...more] = e2e.output(result, GET_TASK);
	expect(more).toHaveLength(0);
	expect(item.json).toMatchObject({ code: 0, data: { task_id: taskId, task_status: 'succeed' } });
	expect(item.json.data.task_result.images[0].url).toMatch(new RegExp(`^${e2e.sim.imageUrl}/images/${taskId}/0\\.png$`));

	// "Allowed HTTP Request Domains" left at All: the credential adds the key to whatever URL the node calls.
	expect(echoed.map((r) => ({ path: r.path, authorization: r.headers.authorization }))).toEqual([
		{ path: '/elsewhere', authorization: `Bearer ${e2e.apiKey}` },
	]);
	expect(e2e.output(result, OTHER_HOST).map((i) => i.json)).toEqual([{ ok: true }]);
});

test('with Allowed HTTP Request Domains = Specific Domains (the API host), the API call works and another host is refused before anything is sent', async () => {
	const { result, queries, echoed } = await run('customApiCallRestricted');

	expect(queries.map((q) => ({ path: q.path, authorization: q.headers.authorization }))).toEqual([
		{ path: `${OMNI_IMAGE}/${taskId}`, authorization: `Bearer ${e2e.apiKey}` },
	]);
	expect(e2e.output(result, GET_TASK)[0].json.data.task_id).toBe(taskId);

	expect(result.ok).toBe(false);
	expect(e2e.task(result, OTHER_HOST)?.executionStatus).toBe('error');
	expect(result.error?.message).toBe(
		`Domain not allowed: This credential is restricted from accessing ${echo.host}:${echo.port}. Only the following domains are allowed: 127.0.0.1`,
	);
	expect(echoed).toHaveLength(0);
});
