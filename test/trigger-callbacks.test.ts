/**
 * The callback trigger against what providers really send: other status spellings, a query that
 * lags its callback, `error: null` beside a success, and callbacks that are not for this trigger's
 * own tasks (forged with another task's token, or replayed after the mark was dropped).
 */
import type { IDataObject, INodeParameters } from 'n8n-workflow';

import { CometApiKlingApi } from '../credentials/CometApiKlingApi.credentials';
import { KlingOmniImageTrigger } from '../nodes/KlingOmniImageTrigger/KlingOmniImageTrigger.node';
import { DROPPED_THROUGH_KEY, MARK_RETENTION_MS, MAX_MARKS, STATIC_DATA_KEY, TaskLedger } from '../nodes/KlingOmniImageTrigger/ledger';
import { TOKEN_PARAMETER } from '../nodes/shared/callback/token';
import { normalizeTask } from '../nodes/shared/task/task';
import type { Simulator, SimulatorOptions } from '../simulator';
import { WebhookTrigger, type WebhookCallResult } from './harness/webhook';
import { API_KEY, createParams, errorMessage, runKling, startSim } from './support/kling';
import { callbackBodyOf } from './support/simulator-http';
import { FAST_RECHECK, FAST_RETRY, serve, UNREACHABLE_TRIGGER_URL } from './support/trigger';
import { until } from './support/wait';

const sims: Simulator[] = [];
afterEach(async () => {
	await Promise.all(sims.splice(0).map(async (sim) => await sim.close()));
});

async function simulator(options: SimulatorOptions = {}): Promise<Simulator> {
	const sim = await startSim({ taskDurationMs: 300, callbackRepeatDelayMs: 20, callbackRetryDelayMs: 20, ...options });
	sims.push(sim);
	return sim;
}

function triggerFor(sim: Simulator, parameters: INodeParameters = {}, more: { webhookId?: string; staticData?: IDataObject } = {}) {
	return new WebhookTrigger({
		nodeType: new KlingOmniImageTrigger(FAST_RETRY, new TaskLedger(), FAST_RECHECK),
		credentialType: new CometApiKlingApi(),
		credentials: { apiKey: API_KEY, baseUrl: sim.apiUrl },
		parameters,
		...more,
	});
}

async function createTasks(sim: Simulator, callbackUrl: string, count = 1, fields: IDataObject = {}): Promise<string[]> {
	const { output, error } = await runKling(
		sim,
		createParams({ waitForCompletion: false, additionalFields: { callbackUrl, ...fields } }),
		{ inputItems: Array.from({ length: count }, (_, index) => ({ json: { index } })) },
	);
	expect(error).toBeUndefined();
	return output[0].map((item) => item.json.task_id as string);
}

function callbackUrlOf(sim: Simulator, taskId: string): string {
	const record = sim.callbacks().find((c) => c.taskId === taskId);
	if (!record) throw new Error(`no callback recorded for task ${taskId}`);
	return record.url;
}

/** The task as the query answers it under `data`, the body a provider posts. */
async function taskData(sim: Simulator, taskId: string): Promise<IDataObject> {
	return (await callbackBodyOf(sim, taskId)) as IDataObject;
}

async function finished(sim: Simulator, taskIds: string[]): Promise<void> {
	await until('the tasks to finish', () => taskIds.every((id) => ['succeed', 'failed'].includes(sim.taskStatus(id))), 10_000, { everyMs: 20 });
}

function queriesOf(sim: Simulator, taskId: string) {
	return sim.apiRequests('query').filter((request) => request.path.endsWith(`/${taskId}`));
}

function started(trigger: WebhookTrigger): WebhookCallResult[] {
	return trigger.calls.filter((call) => call.started);
}

describe('status words as providers spell them', () => {
	it.each(['upper', 'capitalized', 'past'] as const)(
		'final callbacks spelled "%s" start the workflow once per task, after one query each',
		async (statusSpelling) => {
			const sim = await simulator({ statusSpelling });
			const trigger = triggerFor(sim, { downloadImages: false });
			const server = await serve(trigger);
			try {
				const taskIds = await createTasks(sim, server.url, 3);
				await until('every final callback and its repeat', () =>
					taskIds.every((id) => sim.callbacks().some((c) => c.taskId === id && c.kind === 'repeat' && c.ok)), 10_000, { everyMs: 20 });
				await sim.flushCallbacks();
				expect(started(trigger).map((c) => c.items[0].json.task_id).sort()).toEqual([...taskIds].sort());
				expect(started(trigger).every((c) => c.items[0].json.status === 'succeed')).toBe(true);
				for (const id of taskIds) expect(queriesOf(sim, id)).toHaveLength(1);
			} finally {
				await server.close();
			}
		},
	);

	it('a task canceled at the provider ("canceled") is delivered as failed, with the word it was given', async () => {
		const sim = await simulator({ statusSpelling: 'past', taskDurationMs: 5_000 });
		const trigger = triggerFor(sim);
		const server = await serve(trigger);
		try {
			const [taskId] = await createTasks(sim, server.url);
			sim.failTask(taskId);
			await until('the canceled callback', () => started(trigger).length === 1, 10_000, { everyMs: 20 });
			const canceled = sim.callbacks().find((c) => c.taskId === taskId && c.taskStatus === 'failed');
			expect(canceled?.body.task_status).toBe('canceled');
			expect(started(trigger)[0].items[0].json).toMatchObject({ task_id: taskId, status: 'failed' });
			expect(sim.imageRequests()).toHaveLength(0);
		} finally {
			await server.close();
		}
	});

	it('a callback whose status word it does not know is checked with the API, not dropped', async () => {
		const sim = await simulator();
		const [taskId] = await createTasks(sim, UNREACHABLE_TRIGGER_URL);
		await finished(sim, [taskId]);
		const trigger = triggerFor(sim, { downloadImages: false });
		const result = await trigger.call({ body: { task_id: taskId, task_status: 'done' }, url: callbackUrlOf(sim, taskId) });
		expect(result.started).toBe(true);
		expect(queriesOf(sim, taskId)).toHaveLength(1);
	});

	it('a task the API reports in a status word it does not know is answered 503 (retry), not "not finished"', async () => {
		const sim = await simulator({ statusSpelling: () => 'done' });
		const [taskId] = await createTasks(sim, UNREACHABLE_TRIGGER_URL);
		await finished(sim, [taskId]);
		const trigger = triggerFor(sim, { downloadImages: false });
		const result = await trigger.call({ body: { task_id: taskId, task_status: 'done' }, url: callbackUrlOf(sim, taskId) });
		expect(result.status).toBe(503);
		expect(result.started).toBe(false);
		expect(JSON.stringify(result.body)).toMatch(/does not confirm/);
	});
});

describe('a query that lags its final callback, sent once and never retried', () => {
	const once = { callbackRepeats: 0, callbackRetries: 0 };

	it('still says "processing": the trigger looks again within the request and starts the task once', async () => {
		const sim = await simulator({ ...once, queryLagMs: 150 });
		const trigger = new WebhookTrigger({
			nodeType: new KlingOmniImageTrigger(FAST_RETRY, new TaskLedger(), { delaysMs: [100, 100, 100, 100] }),
			credentialType: new CometApiKlingApi(),
			credentials: { apiKey: API_KEY, baseUrl: sim.apiUrl },
			parameters: { downloadImages: false },
		});
		const server = await serve(trigger);
		try {
			const [taskId] = await createTasks(sim, server.url);
			await until('the final callback', () => started(trigger).length === 1, 10_000, { everyMs: 20 });
			// The simulator records the answer once it has read it.
			await sim.flushCallbacks();
			const finals = sim.callbacks().filter((c) => c.taskId === taskId && c.taskStatus === 'succeed');
			expect(finals.map((c) => [c.kind, c.responseStatus])).toEqual([['status', 200]]);
			// The first look met the lagging replica; a later one the final status.
			const statuses = queriesOf(sim, taskId).map((q) => q.status);
			expect(statuses.length).toBeGreaterThan(1);
			expect(started(trigger)[0].items[0].json).toMatchObject({ task_id: taskId, status: 'succeed' });
		} finally {
			await server.close();
		}
	});

	it('does not know a brand-new task yet (task_not_exist): looked at again, then started', async () => {
		const sim = await simulator({ ...once, taskDurationMs: 60, queryLagMs: 250 });
		const trigger = new WebhookTrigger({
			nodeType: new KlingOmniImageTrigger(FAST_RETRY, new TaskLedger(), { delaysMs: [100, 100, 100, 100, 100] }),
			credentialType: new CometApiKlingApi(),
			credentials: { apiKey: API_KEY, baseUrl: sim.apiUrl },
			parameters: { downloadImages: false },
		});
		const server = await serve(trigger);
		try {
			const [taskId] = await createTasks(sim, server.url);
			await until('the final callback', () => started(trigger).length === 1, 10_000, { everyMs: 20 });
			expect(queriesOf(sim, taskId)[0].status).toBe(404);
			expect(started(trigger)[0].items[0].json.task_id).toBe(taskId);
		} finally {
			await server.close();
		}
	});

	it('lags past the bound: answered 503 after every re-check, the single final callback spent, nothing started', async () => {
		const sim = await simulator({ ...once, queryLagMs: 60_000, taskDurationMs: 100 });
		const trigger = triggerFor(sim, { downloadImages: false });
		const server = await serve(trigger);
		try {
			const [taskId] = await createTasks(sim, server.url);
			await until('the final callback', () => sim.callbacks().some((c) => c.taskId === taskId && c.taskStatus === 'succeed' && c.responseStatus !== undefined), 10_000, { everyMs: 20 });
			const final = sim.callbacks().find((c) => c.taskId === taskId && c.taskStatus === 'succeed')!;
			expect(final.responseStatus).toBe(503);
			expect(started(trigger)).toHaveLength(0);
			expect(queriesOf(sim, taskId)).toHaveLength(1 + FAST_RECHECK.delaysMs.length);
			expect(sim.callbacks().filter((c) => c.taskId === taskId && c.taskStatus === 'succeed')).toHaveLength(1);
		} finally {
			await server.close();
		}
	});
});

describe('success answers with "error": null', () => {
	it('are successes: the callback is verified and the task delivered with its images', async () => {
		const sim = await simulator({ successErrorNull: true, callbackWrapped: true });
		const trigger = triggerFor(sim);
		const server = await serve(trigger);
		try {
			const [taskId] = await createTasks(sim, server.url);
			await until('the task', () => started(trigger).length === 1, 10_000, { everyMs: 20 });
			expect(started(trigger)[0].items[0].json).toMatchObject({ task_id: taskId, status: 'succeed' });
			expect(started(trigger)[0].items[0].binary?.data).toBeDefined();
		} finally {
			await server.close();
		}
	});
});

describe('callbacks tied to the tasks created for this trigger', () => {
	const OTHER_WEBHOOK = '0b7e6a55-1e2f-4c3d-8a9b-aabbccddeeff';

	it('Create Omni Image sends a Callback URL with a token, and an external task ID even when none was asked for', async () => {
		const sim = await simulator();
		await createTasks(sim, UNREACHABLE_TRIGGER_URL, 2);
		const bodies = sim.apiRequests('create').map((request) => request.body as IDataObject);
		for (const body of bodies) {
			const url = new URL(body.callback_url as string);
			expect(`${url.origin}${url.pathname}`).toBe(UNREACHABLE_TRIGGER_URL);
			expect(url.searchParams.get(TOKEN_PARAMETER)).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{32}$/);
			expect(body.external_task_id).toMatch(/^n8n-/);
			expect(JSON.stringify(body)).not.toContain(API_KEY);
		}
		expect(new Set(bodies.map((body) => body.callback_url)).size).toBe(2);
	});

	it('another workflow\'s finished task, sent with that task\'s real token to this trigger: 403, nothing started', async () => {
		const sim = await simulator();
		const [otherTask] = await createTasks(sim, UNREACHABLE_TRIGGER_URL.replace(/[0-9a-f-]{36}/, OTHER_WEBHOOK));
		await finished(sim, [otherTask]);
		const trigger = triggerFor(sim);
		const otherUrl = new URL(callbackUrlOf(sim, otherTask));
		const hereWithTheirToken = `${UNREACHABLE_TRIGGER_URL}?${otherUrl.searchParams.toString()}`;
		const result = await trigger.call({ body: await taskData(sim, otherTask), url: hereWithTheirToken });
		expect(result.status).toBe(403);
		expect(result.started).toBe(false);
		// The token names another trigger: refused before any query.
		expect(queriesOf(sim, otherTask)).toHaveLength(0);
	});

	it('a task named in a body carrying this trigger\'s token for another task: refused after the query shows the difference', async () => {
		const sim = await simulator();
		const [ours] = await createTasks(sim, UNREACHABLE_TRIGGER_URL);
		const [theirs] = await createTasks(sim, 'http://127.0.0.1:9/elsewhere');
		await finished(sim, [ours, theirs]);
		const ourBody = await taskData(sim, ours);
		const forgedBody = { ...(await taskData(sim, theirs)), task_info: ourBody.task_info };
		const trigger = triggerFor(sim);
		const result = await trigger.call({ body: forgedBody, url: callbackUrlOf(sim, ours) });
		expect(result.status).toBe(403);
		expect(result.started).toBe(false);
		expect(queriesOf(sim, theirs)).toHaveLength(1);
		expect(sim.imageRequests()).toHaveLength(0);
		// The real callback for our task still starts it.
		expect((await trigger.call({ body: ourBody, url: callbackUrlOf(sim, ours) })).started).toBe(true);
	});

	it('a replay after the task\'s mark was dropped (MAX_MARKS newer tasks) starts nothing', async () => {
		const sim = await simulator();
		const [taskId] = await createTasks(sim, UNREACHABLE_TRIGGER_URL);
		await finished(sim, [taskId]);
		const trigger = triggerFor(sim, { downloadImages: false });
		const url = callbackUrlOf(sim, taskId);
		const body = await taskData(sim, taskId);
		expect((await trigger.call({ body, url })).started).toBe(true);

		// MAX_MARKS newer tasks emitted after it: its mark is dropped when the marks are saved.
		const later = Date.now() + 1000;
		const node = `node:${trigger.node.name}`;
		const stored = trigger.storedStaticData[node] as IDataObject;
		const newer = Object.fromEntries(Array.from({ length: MAX_MARKS }, (_, i) => [`newer-${i}`, later + i]));
		stored[STATIC_DATA_KEY] = { ...(stored[STATIC_DATA_KEY] as IDataObject), ...newer };
		const ledger = new TaskLedger(() => later + MAX_MARKS);
		ledger.persist('any scope', stored);
		expect((stored[STATIC_DATA_KEY] as IDataObject)[taskId]).toBeUndefined();
		expect(stored[DROPPED_THROUGH_KEY]).toBeGreaterThan(0);

		const replayed = await triggerFor(sim, { downloadImages: false }, { staticData: trigger.storedStaticData }).call({ body, url });
		expect(replayed.status).toBe(403);
		expect(replayed.started).toBe(false);
		expect(queriesOf(sim, taskId)).toHaveLength(1);
	});

	it('a token older than the marks are kept starts nothing', async () => {
		const sim = await simulator();
		const [taskId] = await createTasks(sim, UNREACHABLE_TRIGGER_URL);
		await finished(sim, [taskId]);
		const realNow = Date.now;
		try {
			Date.now = () => realNow() + MARK_RETENTION_MS + 60_000;
			const result = await triggerFor(sim).call({ body: await taskData(sim, taskId), url: callbackUrlOf(sim, taskId) });
			expect(result.status).toBe(403);
			expect(JSON.stringify(result.body)).toMatch(/older than/);
		} finally {
			Date.now = realNow;
		}
		expect(queriesOf(sim, taskId)).toHaveLength(0);
	});
});

describe('odd values', () => {
	it('a time in nanoseconds is kept as the API\'s text, never thrown', () => {
		const task = normalizeTask({ task_id: '1', task_status: 'succeed', created_at: 1_733_000_000_000_000_000, updated_at: '1733000000000' });
		expect(task.created_at).toBe('1733000000000000000');
		expect(task.updated_at).toBe(new Date(1_733_000_000_000).toISOString());
	});

	it('a create answered with times in nanoseconds still outputs the created task\'s ID', async () => {
		const sim = await simulator();
		const data = { task_id: 'ns-task-1', task_status: 'submitted', task_info: {}, created_at: 1_733_000_000_000_000_000, updated_at: 1_733_000_000_000_000_000 };
		sim.addFault({ route: 'create', type: 'status', status: 200, body: { code: 0, message: 'SUCCEED', data } });
		const { output, error } = await runKling(sim, createParams({ waitForCompletion: false }));
		expect(error).toBeUndefined();
		expect(output[0][0].json).toMatchObject({ task_id: 'ns-task-1', created_at: '1733000000000000000' });
	});

	it('the trigger\'s Request Timeout is capped like the action node\'s', async () => {
		const sim = await simulator();
		const [taskId] = await createTasks(sim, UNREACHABLE_TRIGGER_URL);
		await finished(sim, [taskId]);
		const result = await triggerFor(sim, { options: { requestTimeout: 2_200_000 } }).call({ body: await taskData(sim, taskId), url: callbackUrlOf(sim, taskId) });
		expect(result.started).toBe(false);
		expect(errorMessage(result.error)).toBe('Option "Request Timeout" must be at most 3600 seconds, got "2200000"');
		expect(sim.apiRequests('query')).toHaveLength(0);
	});
});
