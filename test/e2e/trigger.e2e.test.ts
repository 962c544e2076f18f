/*
 * The trigger in real n8n server mode (`n8n start`, both workflows published): example 5 creates a batch
 * of prompts without waiting, with example 6's production URL as Callback URL; the simulator calls back
 * (submitted, processing, final, the final again) and example 6 (Kling trigger → files) receives them.
 * One task's callbacks never arrive: example 5's fallback collects the batch itself and writes it.
 * Also: forged and malformed callbacks, concurrent repeats, and a repeat after n8n restarts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeRun, E2EInstance } from './harness';
import { expectForgedAndMalformedRefused, postJson } from '../support/callbacks';
import { freePort } from '../support/net';
import { createTask, queryTask } from '../support/simulator-http';
import { sleep, until } from '../support/wait';
import { signCallbackUrl, tokenKey } from '../../nodes/shared/callback/token';

/* eslint-disable @typescript-eslint/no-require-imports */
const examples = require('../../scripts/lib/examples');
/* eslint-enable @typescript-eslint/no-require-imports */

const N = 10;
/** The simulator fails the batch's third task. */
const FAILING_TASK_NUMBER = 3;
const FAIL_REASON = 'Content filter: the prompt was rejected (simulated)';
/** None of the batch's fifth task's callbacks arrives: example 5's fallback collects it. */
const LOST_TASK_NUMBER = 5;
/** Example 5 collects the batch itself this long after creating it (the example ships 30 minutes). */
const FALLBACK_AFTER_MINUTES = 0.25;
/** Prompts starting so make a task that runs for minutes (created straight at the simulator). */
const SLOW = 'SLOW:';
/** Prompts starting so make a task whose query lags its callbacks by this long. */
const LAGGING = 'LAG:';
const QUERY_LAG_MS = 2500;
const BATCH_ID: string = examples.CALLBACK_EXAMPLES.batch.id;
const TRIGGER_ID: string = examples.CALLBACK_EXAMPLES.trigger.id;

let e2e: E2EInstance;
let server: { url: string; stop(): Promise<void>; output(): string };
let port: number;
let triggerUrl: string;
let callbackFolder: string;
let batchResponse: { status: number; body: any; ms: number };
/** Example 5's "Start batch" webhook takes this header (its credential, made per instance). */
const batchStartKey = `e2e-${Date.now().toString(36)}`;
let createdIds: string[];
/** The batch's task whose callbacks never arrive, and the others. */
let lostId: string;
let deliveredIds: string[];
const serverOutput: string[] = [];

interface Execution {
	id: number;
	workflowId: string;
	status: string;
	mode: string;
	startedAt: string;
	stoppedAt: string | null;
}

async function executions(workflowId: string): Promise<Execution[]> {
	return (await e2e.query(
		`SELECT id, workflowId, status, mode, startedAt, stoppedAt FROM execution_entity WHERE workflowId = '${workflowId}' ORDER BY id`,
	)) as Execution[];
}

/** The items the trigger output in one execution (n8n stores run data "flatted"). */
async function triggerItems(executionId: number): Promise<any[]> {
	const [row] = await e2e.query(`SELECT data FROM execution_data WHERE executionId = ${executionId}`);
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const flatted = require(require.resolve('flatted', { paths: [path.join(e2e.n8n.dir, 'node_modules', 'n8n')] }));
	const data = flatted.parse(row.data);
	return data.resultData.runData['Kling Omni Image Trigger'][0].data.main[0];
}

/** Polls `check` for up to 90 s; a timeout shows the end of n8n's output. */
async function waitFor(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
	await until(what, check, 90_000, { everyMs: 300, explain: () => server?.output().slice(-3000) ?? '' });
}

async function startN8n(): Promise<void> {
	server = await e2e.instance.start({ port, echo: false, ownerEmail: 'trigger-e2e@example.com', ownerPassword: 'Trigger-E2e-1' });
	// A POST-only webhook answers GET with 404 "not registered for GET" once its workflow is activated.
	for (const url of [triggerUrl, `http://localhost:${port}/webhook/${examples.BATCH_START_PATH}`]) {
		await waitFor(`the webhook ${url}`, async () => {
			const res = await fetch(url);
			return /not registered for GET/i.test(await res.text());
		});
	}
}

async function stopN8n(): Promise<void> {
	if (!server) return;
	serverOutput.push(server.output());
	await server.stop();
}

/** Every task is finished and all its callbacks (final, repeat, retries) have been delivered. */
async function callbacksDone(taskIds: string[]): Promise<void> {
	await waitFor('the tasks to finish', () => taskIds.every((id) => ['succeed', 'failed'].includes(e2e.sim.taskStatus(id))));
	await waitFor('the final callbacks to be queued', () =>
		taskIds.every((id) => e2e.sim.callbacks().some((c) => c.taskId === id && c.kind === 'repeat')),
	);
	await e2e.sim.flushCallbacks();
}

/**
 * Creates a task straight at the simulator (not through n8n) with the token Create Omni Image would
 * add for `forUrl` (default: this trigger's URL). The simulator's own callbacks go to `deliverTo`:
 * by default the same path on a port nothing listens on, so the test sends what it wants itself.
 * Returns the task id and `forUrl` with the task's token.
 */
async function createAtSimulator(
	prompt: string,
	{ forUrl = triggerUrl, deliverTo }: { forUrl?: string; deliverTo?: string } = {},
): Promise<{ taskId: string; callbackUrl: string }> {
	const externalTaskId = `e2e-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
	const target = deliverTo ?? `http://127.0.0.1:9${new URL(forUrl).pathname}`;
	const signed = new URL(signCallbackUrl(tokenKey(e2e.apiKey), target, externalTaskId, Date.now()));
	const created = await createTask(e2e.sim, { prompt, callback_url: signed.toString(), external_task_id: externalTaskId });
	return { taskId: created.json.data.task_id, callbackUrl: `${forUrl}${signed.search}` };
}

let slowTaskId: string;

beforeAll(async () => {
	e2e = await E2EInstance.create('trigger', {
		simulator: {
			taskDurationMs: 2000,
			// n8n answers a webhook only after loading the workflow and an expression sandbox; on 2 busy cores
			// that can take seconds, and a timed-out delivery would be retried (harmless, but slower).
			callbackTimeoutMs: 20_000,
			taskPlan: (body, taskNumber) => {
				if (String(body?.prompt).startsWith(SLOW)) return { durationMs: 10 * 60_000 };
				if (String(body?.prompt).startsWith(LAGGING)) return { queryLagMs: QUERY_LAG_MS };
				if (taskNumber === LOST_TASK_NUMBER) return { callbacksLost: true };
				return taskNumber === FAILING_TASK_NUMBER ? { outcome: 'failed', failReason: FAIL_REASON } : undefined;
			},
		},
	});
	port = await freePort();
	const [batch, trigger] = examples.configuredCallbackExamples({
		n8nUrl: `http://localhost:${port}`,
		outputFolder: e2e.outputFolder,
		promptCount: N,
		fallbackAfterMinutes: FALLBACK_AFTER_MINUTES,
		pollInterval: 1,
	});
	triggerUrl = examples.triggerProductionUrl(trigger, `http://localhost:${port}`);
	callbackFolder = path.join(e2e.outputFolder, 'callback');
	fs.mkdirSync(callbackFolder, { recursive: true });
	await e2e.instance.importCredentials([examples.batchStartCredentialEntry(batchStartKey)]);
	await e2e.importWorkflows([batch, trigger]);
	for (const id of [BATCH_ID, TRIGGER_ID]) {
		const published = await e2e.instance.command(['publish:workflow', `--id=${id}`]);
		e2e.commandOutput.push(published.stdout, published.stderr);
	}
	await startN8n();

	const started = Date.now();
	const batchStart = `http://localhost:${port}/webhook/${examples.BATCH_START_PATH}`;
	const unauthenticated = await postJson(batchStart, {});
	expect(unauthenticated.status).toBe(403);
	batchResponse = { ...(await postJson(batchStart, {}, { [examples.BATCH_START_HEADER]: batchStartKey })), ms: Date.now() - started };
	createdIds = Array.isArray(batchResponse.body) ? batchResponse.body.map((task: { task_id: string }) => task.task_id) : [];
	lostId = [...e2e.sim.tasks.values()].find((task) => task.callbacksLost)?.id ?? '';
	deliveredIds = createdIds.filter((id) => id !== lostId);
}, 8 * 60 * 1000);

afterAll(async () => {
	await stopN8n();
	await e2e?.close();
});

test('the batch workflow creates every task in seconds, with the trigger\'s URL as callback, and answers with them', async () => {
	expect(batchResponse.status).toBe(200);
	expect(createdIds).toHaveLength(N);
	expect(createdIds).toContain(lostId);
	expect(batchResponse.ms).toBeLessThan(15_000);
	const creates = e2e.sim.apiRequests('create');
	expect(creates).toHaveLength(N);
	for (const create of creates) expect((create.body as { callback_url: string }).callback_url).toMatch(new RegExp(`^${triggerUrl}\\?kling_token=`));
	// Nothing polled while the fallback waits: the only queries so far are the trigger's.
	expect(e2e.sim.apiRequests('query').every((q) => !q.path.endsWith(`/${lostId}`))).toBe(true);
});

test('forged and malformed callbacks get a 4xx and start nothing', async () => {
	// A real task of the account, claimed finished long before it is, at the trigger's URL without its token.
	slowTaskId = (await createAtSimulator(`${SLOW} a paper crane`)).taskId;
	await expectForgedAndMalformedRefused(e2e.sim, triggerUrl, slowTaskId);
	// (That none of them started an execution is checked below: exactly one execution per batch task.)
});

test('every task whose callbacks came starts the trigger workflow once, and its images are written, as the simulator served them', async () => {
	await callbacksDone(deliveredIds);
	await waitFor('a finished trigger execution per delivered task', async () => {
		const runs = await executions(TRIGGER_ID);
		return runs.length >= deliveredIds.length && runs.every((run) => run.stoppedAt);
	});
	await waitFor('the batch execution, its fallback included', async () => (await executions(BATCH_ID)).every((run) => run.stoppedAt));
	// Repeats and late duplicates have had time to start something; they must not have.
	await sleep(2000);
	const [batchRun] = await executions(BATCH_ID);
	expect(batchRun.status).toBe('success');
	const runs = await executions(TRIGGER_ID);
	expect(runs).toHaveLength(deliveredIds.length);
	expect(runs.map((run) => [run.mode, run.status])).toEqual(runs.map(() => ['webhook', 'success']));

	const byTask = new Map<string, any[]>();
	for (const run of runs) {
		const items = await triggerItems(run.id);
		const taskId = items[0].json.task_id;
		expect(byTask.has(taskId)).toBe(false);
		byTask.set(taskId, items);
	}
	expect([...byTask.keys()].sort()).toEqual([...deliveredIds].sort());

	const failedId = [...e2e.sim.tasks.values()].find((task) => task.outcome === 'failed')!.id;
	expect(createdIds).toContain(failedId);
	expect(byTask.get(failedId)).toEqual([
		expect.objectContaining({ json: expect.objectContaining({ task_id: failedId, status: 'failed', status_message: FAIL_REASON }) }),
	]);
	const files = fs.readdirSync(callbackFolder).sort();
	const succeeded = createdIds.filter((id) => id !== failedId);
	// The task whose callbacks were lost too: example 5's fallback wrote it, under the same name.
	expect(files).toEqual(succeeded.map((id) => `kling-${id}-0.png`).sort());
	expect(succeeded).toContain(lostId);
	const lostImageUrl = e2e.sim.tasks.get(lostId)!.images[0].url;
	expect(fs.readFileSync(path.join(callbackFolder, `kling-${lostId}-0.png`))).toEqual(e2e.sim.expectedImageBytes(lostImageUrl));
	for (const taskId of succeeded.filter((id) => id !== lostId)) {
		const [item] = byTask.get(taskId)!;
		expect(item.json.external_task_id).toMatch(/^batch-\d+-\d+$/);
		expect(fs.readFileSync(path.join(callbackFolder, `kling-${taskId}-0.png`))).toEqual(
			e2e.sim.expectedImageBytes(item.json.image.url),
		);
	}
	// One verification query per delivered task and one by the fallback per task; none for the forged
	// callbacks (no token). Each image downloaded by the trigger and again by the fallback, the lost one once.
	const queries = e2e.sim.apiRequests('query');
	for (const taskId of createdIds) {
		const count = queries.filter((q) => q.path.endsWith(`/${taskId}`)).length;
		expect([taskId, count]).toEqual([taskId, taskId === lostId ? 1 : 2]);
	}
	expect(queries.filter((q) => q.path.endsWith(`/${slowTaskId}`))).toHaveLength(0);
	expect(queries).toHaveLength(2 * N - 1);
	expect(e2e.sim.imageRequests()).toHaveLength(2 * (N - 1) - 1);
});

test('the static data in n8n\'s database holds every task, although callbacks of many tasks came at once', async () => {
	const [row] = await e2e.query(`SELECT staticData FROM workflow_entity WHERE id = '${TRIGGER_ID}'`);
	const staticData = JSON.parse(row.staticData);
	expect(Object.keys(staticData['node:Kling Omni Image Trigger'].emittedTasks).sort()).toEqual([...deliveredIds].sort());
});

test('concurrent repeats of a new task\'s final callback start one execution', async () => {
	const { taskId, callbackUrl } = await createAtSimulator('A paper boat on a pond');
	await waitFor('the task to finish', () => e2e.sim.taskStatus(taskId) === 'succeed');
	const body = (await queryTask(e2e.sim, taskId)).json.data;
	const before = (await executions(TRIGGER_ID)).length;
	const answers = await Promise.all(Array.from({ length: 8 }, async () => await postJson(callbackUrl, body)));
	expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
	expect(answers.filter((a) => a.body.started === true)).toHaveLength(1);
	await waitFor('its execution', async () => (await executions(TRIGGER_ID)).length > before);
	await sleep(1500);
	expect((await executions(TRIGGER_ID)).length).toBe(before + 1);
	createdIds.push(taskId);
	deliveredIds.push(taskId);
});

test('another workflow\'s finished task, sent here with its own real token, starts nothing; this trigger\'s own task does', async () => {
	const otherTrigger = triggerUrl.replace(/\/webhook\/[^/]+\/kling$/, '/webhook/0b7e6a55-1e2f-4c3d-8a9b-aabbccddeeff/kling');
	const other = await createAtSimulator('Another workflow\'s paper lantern', { forUrl: otherTrigger });
	const ours = await createAtSimulator('Our own paper lantern');
	await waitFor('both tasks to finish', () => [other.taskId, ours.taskId].every((id) => e2e.sim.taskStatus(id) === 'succeed'));
	const before = (await executions(TRIGGER_ID)).length;
	const theirToken = new URL(other.callbackUrl).search;
	const forged = await postJson(`${triggerUrl}${theirToken}`, (await queryTask(e2e.sim, other.taskId)).json.data);
	expect(forged.status).toBe(403);
	const real = await postJson(ours.callbackUrl, (await queryTask(e2e.sim, ours.taskId)).json.data);
	expect(real).toEqual({ status: 200, body: expect.objectContaining({ started: true }) });
	await waitFor('its execution', async () => (await executions(TRIGGER_ID)).length > before);
	await sleep(1500);
	const runs = await executions(TRIGGER_ID);
	expect(runs).toHaveLength(before + 1);
	expect((await triggerItems(runs[runs.length - 1].id))[0].json.task_id).toBe(ours.taskId);
	deliveredIds.push(ours.taskId);
});

test('a final callback whose query lags it by 2.5 s starts the workflow from that one delivery', async () => {
	const { taskId } = await createAtSimulator(`${LAGGING} a paper kite`, { deliverTo: triggerUrl });
	await waitFor('the final callback', () =>
		e2e.sim.callbacks().some((c) => c.taskId === taskId && c.kind === 'status' && c.taskStatus === 'succeed' && c.responseStatus !== undefined),
	);
	const final = e2e.sim.callbacks().find((c) => c.taskId === taskId && c.kind === 'status' && c.taskStatus === 'succeed')!;
	// 200 from the first delivery (a lag past the re-checks would have been answered 503).
	expect([final.attempt, final.responseStatus]).toEqual([1, 200]);
	const queries = e2e.sim.apiRequests('query').filter((q) => q.path.endsWith(`/${taskId}`));
	expect(queries.length).toBeGreaterThanOrEqual(2);
	await waitFor('its execution', async () => {
		for (const run of (await executions(TRIGGER_ID)).filter((r) => r.stoppedAt)) {
			if ((await triggerItems(run.id))[0]?.json.task_id === taskId) return true;
		}
		return false;
	});
	deliveredIds.push(taskId);
});

test('after n8n restarts, a repeated final callback starts nothing', async () => {
	const before = (await executions(TRIGGER_ID)).length;
	await stopN8n();
	await startN8n();
	const finals = e2e.sim.callbacks().filter((c) => c.kind === 'status' && c.taskStatus === 'succeed' && c.ok);
	const answers = await Promise.all(finals.slice(0, 4).map(async (c) => await postJson(c.url, c.body)));
	for (const answer of answers) expect(answer).toEqual({ status: 200, body: expect.objectContaining({ started: false, reason: 'already handled' }) });
	await sleep(1500);
	expect((await executions(TRIGGER_ID)).length).toBe(before);
}, 3 * 60 * 1000);

test('the API key is in nothing n8n stored or printed', async () => {
	expect(e2e.filesContaining(e2e.apiKey)).toEqual([]);
	const printed = [...e2e.commandOutput, ...serverOutput, server.output()].join('\n');
	expect(printed.includes(e2e.apiKey)).toBe(false);
	// The callbacks never carried it either.
	expect(JSON.stringify(e2e.sim.callbacks())).not.toContain(e2e.apiKey);
	void describeRun;
});
