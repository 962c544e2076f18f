/**
 * Kling Omni Image Trigger: its webhook method driven through n8n-core's WebhookContext
 * (test/harness/webhook.ts), with callbacks the simulator really sends (through a loopback server
 * that hands each POST to the trigger as n8n would) and callbacks built by hand.
 */
import type { IDataObject, INodeExecutionData, INodeParameters, INodeProperties } from 'n8n-workflow';

import { CometApiKlingApi } from '../credentials/CometApiKlingApi.credentials';
import { KlingOmniImage } from '../nodes/KlingOmniImage/KlingOmniImage.node';
import { MAX_CALLBACK_BYTES } from '../nodes/KlingOmniImageTrigger/callback';
import { KlingOmniImageTrigger } from '../nodes/KlingOmniImageTrigger/KlingOmniImageTrigger.node';
import { STATIC_DATA_KEY, MARK_RETENTION_MS, TaskLedger } from '../nodes/KlingOmniImageTrigger/ledger';
import type { Simulator } from '../simulator';
import { binaryToBuffer } from './harness';
import { recordedDeliveries } from './harness/deduplication';
import { WebhookTrigger, type WebhookCallResult, type WebhookRequest } from './harness/webhook';
import { callbackBodyOf } from './support/simulator-http';
import { FAST_RECHECK, FAST_RETRY, serve, UNREACHABLE_TRIGGER_URL } from './support/trigger';
import { until } from './support/wait';
import { API_KEY, createParams, runKling, startSim } from './support/kling';


let sim: Simulator;
beforeAll(async () => {
	sim = await startSim({ taskDurationMs: 300, callbackRepeatDelayMs: 20, callbackRetryDelayMs: 20 });
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

function newTrigger(parameters: INodeParameters = {}, more: Partial<ConstructorParameters<typeof WebhookTrigger>[0]> = {}, ledger = new TaskLedger()) {
	return new WebhookTrigger({
		nodeType: new KlingOmniImageTrigger(FAST_RETRY, ledger, FAST_RECHECK),
		credentialType: new CometApiKlingApi(),
		credentials: { apiKey: API_KEY, baseUrl: sim.apiUrl },
		parameters,
		...more,
	});
}

/** Creates tasks without waiting, with a callback URL, through the action node. */
async function createWithCallback(callbackUrl: string, count: number, overrides: IDataObject = {}): Promise<string[]> {
	const { output, error } = await runKling(
		sim,
		createParams({ waitForCompletion: false, additionalFields: { callbackUrl }, ...overrides }),
		{ inputItems: Array.from({ length: count }, (_, index) => ({ json: { index } })) },
	);
	expect(error).toBeUndefined();
	return output[0].map((item) => item.json.task_id as string);
}

/** Waits until every callback of the tasks was delivered (final status and its repeat included). */
async function allCallbacksDone(taskIds: string[], repeats = 1): Promise<void> {
	await until('the callbacks', () =>
		taskIds.every((id) => sim.callbacks().filter((c) => c.taskId === id && c.kind === 'repeat' && c.ok).length >= repeats),
	);
	await sim.flushCallbacks();
}

function queriesOf(taskId: string) {
	return sim.apiRequests('query').filter((request) => request.path.endsWith(`/${taskId}`));
}

function startedCalls(trigger: WebhookTrigger): WebhookCallResult[] {
	return trigger.calls.filter((call) => call.started);
}

/** A task as the query answers it under `data`: what the provider posts as the callback body. */
async function taskData(taskId: string): Promise<IDataObject> {
	return (await callbackBodyOf(sim, taskId)) as IDataObject;
}

/** The Callback URL the task was created with (its token included), as the simulator calls it. */
function callbackUrlOf(taskId: string): string {
	const record = sim.callbacks().find((c) => c.taskId === taskId && c.kind === 'status');
	if (!record) throw new Error(`no callback recorded for task ${taskId}`);
	return record.url;
}

/** One callback for the task, to the URL it was created with. */
async function deliver(trigger: WebhookTrigger, taskId: string, request: WebhookRequest = {}): Promise<WebhookCallResult> {
	return await trigger.call({ body: await taskData(taskId), ...request, url: callbackUrlOf(taskId) });
}

async function finishedTask(overrides: IDataObject = {}): Promise<string> {
	const [taskId] = await createWithCallback(UNREACHABLE_TRIGGER_URL, 1, overrides);
	await until('the task to finish', () => ['succeed', 'failed'].includes(sim.taskStatus(taskId)));
	return taskId;
}

function withoutPairing(items: INodeExecutionData[]) {
	return items.map(({ json, binary }) => ({
		json: { ...json, updated_at: 'any' },
		binary: binary && Object.fromEntries(Object.entries(binary).map(([key, b]) => [key, { fileName: b.fileName, mimeType: b.mimeType, fileSize: b.fileSize }])),
	}));
}

describe('a task created with the trigger\'s URL as callback', () => {
	it('starts one execution with what Get Task with Download Images outputs, after one verification query', async () => {
		const trigger = newTrigger();
		const server = await serve(trigger);
		try {
			const [taskId] = await createWithCallback(server.url, 1, { n: 2, additionalFields: { callbackUrl: server.url, externalTaskId: 'row-17' } });
			await allCallbacksDone([taskId]);
			await trigger.idle();

			const deliveries = sim.callbacks().filter((c) => c.taskId === taskId);
			expect(deliveries.map((c) => [c.kind, c.taskStatus, c.responseStatus])).toEqual([
				['status', 'submitted', 200],
				['status', 'processing', 200],
				['status', 'succeed', 200],
				['repeat', 'succeed', 200],
			]);
			const started = startedCalls(trigger);
			expect(started).toHaveLength(1);
			// The unfinished statuses cost no query, the repeat neither: one verification query.
			expect(queriesOf(taskId)).toHaveLength(1);
			expect(sim.imageRequests()).toHaveLength(2);
			const inAnswerOrder = [...trigger.calls].sort((a, b) => a.answeredAt! - b.answeredAt!);
			expect(inAnswerOrder.map((c) => (c.body as IDataObject).reason ?? 'started')).toEqual([
				'the task is not finished',
				'the task is not finished',
				'started',
				'already handled',
			]);

			const items = started[0].items;
			expect(items).toHaveLength(2);
			expect(items[0].json).toMatchObject({ task_id: taskId, status: 'succeed', external_task_id: 'row-17' });
			for (const item of items) {
				expect(item.pairedItem).toBeUndefined();
				const image = item.json.image as IDataObject;
				expect(await binaryToBuffer(item.binary!.data)).toEqual(sim.expectedImageBytes(image.url as string));
			}

			// Exactly what Get Task with Download Images gives for the same task.
			const getTask = await runKling(sim, { operation: 'getTask', taskId, downloadImages: true });
			expect(withoutPairing(items)).toEqual(withoutPairing(getTask.output[0]));
		} finally {
			await server.close();
		}
	});

	it('emits each of many tasks once, its repeated final callback answered without a query', async () => {
		const trigger = newTrigger();
		const server = await serve(trigger);
		try {
			const taskIds = await createWithCallback(server.url, 6);
			await allCallbacksDone(taskIds);
			await trigger.idle();
			const started = startedCalls(trigger);
			expect(started.map((c) => c.items[0].json.task_id).sort()).toEqual([...taskIds].sort());
			for (const taskId of taskIds) expect(queriesOf(taskId)).toHaveLength(1);
			expect(Object.keys(trigger.nodeStaticData()[STATIC_DATA_KEY] as IDataObject).sort()).toEqual([...taskIds].sort());
		} finally {
			await server.close();
		}
	});

	it('takes the callback wrapped in {code, message, data} as well', async () => {
		const taskId = await finishedTask();
		const trigger = newTrigger({ downloadImages: false });
		const data = await taskData(taskId);
		const result = await trigger.call({ body: { code: 0, message: 'SUCCEED', data }, url: callbackUrlOf(taskId) });
		expect(result.status).toBe(200);
		expect(result.started).toBe(true);
		expect(result.items.map((item) => item.json.task_id)).toEqual([taskId]);
		expect(result.items[0].binary).toBeUndefined();
		expect(sim.imageRequests()).toHaveLength(0);
	});

	it('reads a JSON body sent as text/plain or without a content type', async () => {
		const taskId = await finishedTask();
		const text = JSON.stringify(await taskData(taskId));
		const trigger = newTrigger({ downloadImages: false });
		const asText = await trigger.call({ body: text, rawBody: text, headers: { 'content-type': 'text/plain' }, url: callbackUrlOf(taskId) });
		expect(asText.started).toBe(true);
		const again = await newTrigger({ downloadImages: false }).call({ body: {}, rawBody: text, headers: { 'content-type': '' }, url: callbackUrlOf(taskId) });
		expect(again.started).toBe(true);
	});

	it('outputs one item per task with numbered binary fields when asked, like the action node', async () => {
		const taskId = await finishedTask({ n: 3 });
		const trigger = newTrigger({ options: { outputMode: 'taskPerItem', binaryPropertyName: 'image' } });
		const result = await deliver(trigger, taskId);
		expect(result.items).toHaveLength(1);
		expect(Object.keys(result.items[0].binary ?? {})).toEqual(['image_0', 'image_1', 'image_2']);
		expect(result.items[0].json.binary_properties).toEqual(['image_0', 'image_1', 'image_2']);
	});

	it('outputs a failed task as an item with its reason, without downloading', async () => {
		const failing = await startSim({ taskPlan: () => ({ outcome: 'failed', failReason: 'Content filter: rejected (simulated)' }) });
		try {
			const created = await runKling(failing, createParams({ waitForCompletion: false, additionalFields: { callbackUrl: UNREACHABLE_TRIGGER_URL } }));
			const taskId = created.output[0][0].json.task_id as string;
			await until('the task to fail', () => failing.taskStatus(taskId) === 'failed');
			const trigger = new WebhookTrigger({
				nodeType: new KlingOmniImageTrigger(FAST_RETRY, new TaskLedger(), FAST_RECHECK),
				credentialType: new CometApiKlingApi(),
				credentials: { apiKey: API_KEY, baseUrl: failing.apiUrl },
			});
			const url = failing.callbacks().find((c) => c.taskId === taskId)!.url;
			const result = await trigger.call({ body: { task_id: taskId, task_status: 'failed' }, url });
			expect(result.status).toBe(200);
			expect(result.items).toHaveLength(1);
			expect(result.items[0].json).toMatchObject({
				task_id: taskId,
				status: 'failed',
				status_message: 'Content filter: rejected (simulated)',
			});
			expect(failing.imageRequests()).toHaveLength(0);
		} finally {
			await failing.close();
		}
	});

	it('answers before it downloads: a slow image server does not hold the callback', async () => {
		const taskId = await finishedTask();
		sim.addFault({ route: 'image', type: 'delay', ms: 1500 });
		const result = await deliver(newTrigger(), taskId);
		expect(result.status).toBe(200);
		expect(result.answeredAfterMs!).toBeLessThan(1000);
		expect(result.returnedAfterMs).toBeGreaterThanOrEqual(1500);
		expect(result.items).toHaveLength(1);
	});

	it('emits a download that fails after the answer as the task with the error, not as a crash', async () => {
		const taskId = await finishedTask();
		sim.expireImages({ status: 404, taskId });
		const result = await deliver(newTrigger(), taskId);
		expect(result.error).toBeUndefined();
		expect(result.items).toHaveLength(1);
		expect(result.items[0].json).toMatchObject({ task_id: taskId, status: 'succeed' });
		expect(result.items[0].json.error).toMatch(/Could not download image 0 of task .*expired/);
	});
});

describe('callbacks that are not trusted', () => {
	it('a forged success at the trigger\'s URL without a task\'s token: 403, no query, nothing started, the forged image never fetched', async () => {
		const trigger = newTrigger();
		const server = await serve(trigger);
		try {
			const [taskId] = await createWithCallback(server.url, 1);
			for (const forged of [await sim.sendForgedCallback(server.url), await sim.sendForgedCallback(server.url, { taskId, wrapped: true })]) {
				expect(forged.responseStatus).toBe(403);
			}
			expect(startedCalls(trigger)).toHaveLength(0);
			expect(queriesOf(taskId)).toHaveLength(0);
			expect(sim.imageRequests()).toHaveLength(0);
		} finally {
			await server.close();
		}
	});

	it('a forged early success at the task\'s own URL: re-checked, 503, nothing started; the real final status still is', async () => {
		const slow = await startSim({ taskDurationMs: 1500, callbackRepeatDelayMs: 20, callbackRetryDelayMs: 20 });
		const trigger = new WebhookTrigger({
			nodeType: new KlingOmniImageTrigger(FAST_RETRY, new TaskLedger(), FAST_RECHECK),
			credentialType: new CometApiKlingApi(),
			credentials: { apiKey: API_KEY, baseUrl: slow.apiUrl },
		});
		const server = await serve(trigger);
		try {
			const { output } = await runKling(slow, createParams({ waitForCompletion: false, additionalFields: { callbackUrl: server.url } }));
			const taskId = output[0][0].json.task_id as string;
			const url = slow.callbacks().find((c) => c.taskId === taskId)!.url;
			const forged = await slow.sendForgedCallback(url, { taskId });
			expect(forged.responseStatus).toBe(503);
			expect(startedCalls(trigger)).toHaveLength(0);
			// One look and one per re-check, all while the task was still running.
			expect(slow.apiRequests('query')).toHaveLength(1 + FAST_RECHECK.delaysMs.length);
			await until('the final callback', () => slow.callbacks().some((c) => c.taskId === taskId && c.kind === 'repeat' && c.ok));
			await slow.flushCallbacks();
			const started = startedCalls(trigger);
			expect(started).toHaveLength(1);
			expect((started[0].items[0].json.image as IDataObject).url).not.toContain('forged');
		} finally {
			await server.close();
			await slow.close();
		}
	});

	it.each(['notJson', 'noTaskId', 'empty', 'array'] as const)(
		'a malformed callback (%s): 4xx, no query, nothing started',
		async (kind) => {
			const trigger = newTrigger();
			const server = await serve(trigger);
			try {
				const record = await sim.sendMalformedCallback(server.url, kind);
				expect(record.responseStatus).toBeGreaterThanOrEqual(400);
				expect(record.responseStatus).toBeLessThan(500);
				expect(startedCalls(trigger)).toHaveLength(0);
				expect(sim.apiRequests('query')).toHaveLength(0);
			} finally {
				await server.close();
			}
		},
	);

	it.each([
		['text that is not JSON', { rawBody: 'task_id=1', headers: { 'content-type': 'text/plain' } }, 400, /not JSON/],
		['no task id', { body: { task_status: 'succeed' } }, 400, /no task_id/],
		['a task id that is no task id', { body: { task_id: '../../v1/other?x=1', task_status: 'succeed' } }, 400, /not a task ID/],
		['an array', { body: [{ task_id: '1' }] }, 400, /JSON object/],
		['a body over the size limit', { body: { task_id: '1', padding: 'x'.repeat(MAX_CALLBACK_BYTES) } }, 413, /limit/],
	])('answers %s with a 4xx before any request', async (_what, request, status, message) => {
		const result = await newTrigger().call(request);
		expect(result.status).toBe(status);
		expect((result.body as IDataObject).error).toMatch(message);
		expect(result.started).toBe(false);
		expect(sim.apiRequests()).toHaveLength(0);
	});

	it('answers 503 and starts nothing when the API cannot be asked; the provider\'s retry then starts it', async () => {
		const taskId = await finishedTask();
		const body = await taskData(taskId);
		sim.addFault({ route: 'query', type: 'status', status: 503, times: 3 });
		const trigger = newTrigger({ downloadImages: false });
		const first = await trigger.call({ body, url: callbackUrlOf(taskId) });
		expect(first.status).toBe(503);
		expect(first.started).toBe(false);
		expect(JSON.stringify(first.body)).not.toContain('HTTP');
		const retry = await trigger.call({ body, url: callbackUrlOf(taskId) });
		expect(retry.started).toBe(true);
	});

	it('the API key is in nothing the trigger answers or emits', async () => {
		const trigger = newTrigger();
		const taskId = await finishedTask();
		await deliver(trigger, taskId);
		await trigger.call({ body: { task_id: 'nope-1', task_status: 'succeed' }, url: callbackUrlOf(taskId) });
		sim.addFault({ route: 'query', type: 'status', status: 401, code: 1002, message: 'Authorization is invalid' });
		await trigger.call({ body: { task_id: taskId + '0', task_status: 'succeed' }, url: callbackUrlOf(taskId) });
		const seen = JSON.stringify({ calls: trigger.calls.map(({ status, body, items }) => ({ status, body, items })), data: trigger.storedStaticData });
		expect(seen).not.toContain(API_KEY);
		expect(sim.imageRequests().every((request) => !request.headers.authorization)).toBe(true);
	});
});

describe('once per task', () => {
	it('concurrent repeats of many tasks\' final callbacks: each task once, one query each, every mark saved', async () => {
		const taskIds = await Promise.all(Array.from({ length: 8 }, async () => await finishedTask()));
		const bodies = await Promise.all(taskIds.map(async (id) => ({ body: await taskData(id), url: callbackUrlOf(id) })));
		const trigger = newTrigger();
		// The first task verified downloads slowest, so its save comes last (in n8n: over the others').
		sim.addFault({ route: 'image', type: 'delay', ms: 500 });
		// 5 deliveries of each task's final callback, all 40 at once.
		await Promise.all(bodies.flatMap((body) => Array.from({ length: 5 }, async () => await trigger.call(body))));
		const started = startedCalls(trigger);
		expect(started.map((c) => c.items[0].json.task_id).sort()).toEqual([...taskIds].sort());
		for (const taskId of taskIds) expect(queriesOf(taskId)).toHaveLength(1);
		expect(trigger.calls.filter((c) => (c.body as IDataObject).reason === 'already handled')).toHaveLength(32);
		// n8n saved the whole static data after each call, last writer winning: still every mark is there.
		expect(Object.keys(trigger.nodeStaticData()[STATIC_DATA_KEY] as IDataObject).sort()).toEqual([...taskIds].sort());
	});

	it('after a restart (a new process, static data from the database) a repeated callback starts nothing', async () => {
		const taskId = await finishedTask();
		const before = newTrigger({ downloadImages: false });
		expect((await deliver(before, taskId)).started).toBe(true);
		const after = newTrigger({ downloadImages: false }, { staticData: before.storedStaticData });
		const repeat = await deliver(after, taskId);
		expect(repeat.started).toBe(false);
		expect((repeat.body as IDataObject).reason).toBe('already handled');
		expect(queriesOf(taskId)).toHaveLength(1);
	});

	it('a new process whose static data save was lost starts an execution again, and its execution step drops the task', async () => {
		const taskId = await finishedTask();
		const first = await deliver(newTrigger({ downloadImages: false }), taskId);
		expect([first.started, first.items.map((item) => item.json.task_id)]).toEqual([true, [taskId]]);
		// Same static data as at the start (the save did not happen), new process memory: n8n's
		// deduplication store, shared by all processes, knows the task was delivered.
		const repeat = await deliver(newTrigger({ downloadImages: false }), taskId);
		expect([repeat.started, repeat.items]).toEqual([true, []]);
		expect(recordedDeliveries('harness-trigger-workflow', 'Kling Omni Image Trigger')).toContain(taskId);
	});

	it('test URL calls (manual mode) are not recorded as deliveries, so they hide nothing from the published workflow', async () => {
		const taskId = await finishedTask();
		expect((await deliver(newTrigger({ downloadImages: false }, { mode: 'manual' }), taskId)).items).toHaveLength(1);
		expect(recordedDeliveries('harness-trigger-workflow', 'Kling Omni Image Trigger')).not.toContain(taskId);
		expect((await deliver(newTrigger({ downloadImages: false }), taskId)).items).toHaveLength(1);
	});

	it('unknown and unfinished tasks are not marked: their later final callback starts the workflow', async () => {
		const trigger = newTrigger({ downloadImages: false });
		const [taskId] = await createWithCallback(UNREACHABLE_TRIGGER_URL, 1);
		const early = await trigger.call({ body: { task_id: taskId, task_status: 'succeed' }, url: callbackUrlOf(taskId) });
		expect(early.started).toBe(false);
		await until('the task to finish', () => sim.taskStatus(taskId) === 'succeed');
		const final = await deliver(trigger, taskId);
		expect(final.started).toBe(true);
		expect(Object.keys(trigger.nodeStaticData()[STATIC_DATA_KEY] as IDataObject)).toEqual([taskId]);
	});

	it('a test URL call (manual mode) is not written to static data', async () => {
		const taskId = await finishedTask();
		const trigger = newTrigger({ downloadImages: false }, { mode: 'manual' });
		expect((await deliver(trigger, taskId)).started).toBe(true);
		expect(trigger.storedStaticData).toEqual({});
	});

	it('forgets marks past the retention time and keeps the newest', async () => {
		let now = 1_000_000;
		const ledger = new TaskLedger(() => now);
		const staticData: IDataObject = { [STATIC_DATA_KEY]: { old: now - MARK_RETENTION_MS - 1, recent: now - 1000 } };
		const claim = await ledger.claim('scope', 'fresh', staticData);
		expect(claim.kind).toBe('claimed');
		if (claim.kind === 'claimed') claim.confirm();
		ledger.persist('scope', staticData);
		expect(Object.keys(staticData[STATIC_DATA_KEY] as IDataObject).sort()).toEqual(['fresh', 'recent']);
		now += 10;
		expect((await ledger.claim('scope', 'recent', staticData)).kind).toBe('duplicate');
	});
});

describe('unfinished statuses, when asked for', () => {
	it('start the workflow once per task and status, checked with the API, without images', async () => {
		const trigger = newTrigger({ options: { emitUnfinished: true } });
		const server = await serve(trigger);
		try {
			const [taskId] = await createWithCallback(server.url, 1);
			await allCallbacksDone([taskId]);
			await trigger.idle();
			const statuses = startedCalls(trigger).map((c) => c.items.map((item) => item.json.status));
			expect(statuses[0]).toEqual(['submitted']);
			expect(statuses.at(-1)).toEqual(['succeed']);
			expect(statuses.filter((s) => s[0] === 'succeed')).toHaveLength(1);
			for (const call of startedCalls(trigger).slice(0, -1)) expect(call.items[0].binary).toBeUndefined();
			expect(sim.imageRequests()).toHaveLength(1);
		} finally {
			await server.close();
		}
	});
});

describe('the node', () => {
	it('shows a production URL /webhook/<webhook id>/kling, the one to paste as Callback URL', () => {
		const trigger = newTrigger();
		expect(trigger.productionUrl()).toBe('http://localhost:5678/webhook/5f1c0a8e-6b1d-4f57-9a43-1c2b3d4e5f60/kling');
		const description = new KlingOmniImageTrigger().description;
		expect(description.group).toEqual(['trigger']);
		expect(description.webhooks).toEqual([
			expect.objectContaining({ name: 'default', httpMethod: 'POST', path: 'kling' }),
		]);
		expect(description.credentials).toEqual(new KlingOmniImage().description.credentials);
	});

	it('has the action node\'s download options: same names, types, defaults and choices', () => {
		const shape = (option: INodeProperties) => ({
			name: option.name,
			displayName: option.displayName,
			type: option.type,
			default: option.default,
			options: option.options,
			typeOptions: option.typeOptions,
		});
		const triggerOptions = (new KlingOmniImageTrigger().description.properties.find((p) => p.name === 'options')!
			.options as INodeProperties[]).map(shape);
		const getTaskOptions = new KlingOmniImage().description.properties.find(
			(p) => p.name === 'options' && p.displayOptions?.show?.operation?.includes('getTask'),
		)!.options as INodeProperties[];
		for (const name of ['outputMode', 'binaryPropertyName', 'downloadWatermarked', 'maxDownloadSizeMb']) {
			const ours = triggerOptions.find((o) => o.name === name);
			const theirs = getTaskOptions.find((o) => o.name === name);
			expect(ours).toBeDefined();
			expect({ ...ours, description: undefined }).toEqual({ ...shape(theirs!), description: undefined });
		}
		// The timeout is the trigger's own (downloads only), under the same name and default.
		const timeout = getTaskOptions.find((o) => o.name === 'requestTimeout')!;
		expect(triggerOptions.find((o) => o.name === 'requestTimeout')).toMatchObject({ type: timeout.type, default: timeout.default });
	});
});
