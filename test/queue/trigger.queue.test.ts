/*
 * Scenario 2: the callback trigger in n8n's queue mode. Workflow A (production webhook → Code making
 * N prompts → Create Omni Image with Wait for Completion off and the trigger's production URL as Callback URL)
 * creates a batch without waiting; the simulator calls back (submitted, processing, final, the final again) to
 * the main, the only process that takes webhooks; the trigger's webhook method runs there (verification query,
 * download, its once-per-task mark in the main's memory and in static data), and workflow B's executions
 * (trigger → HTTP upload to a loopback receiver) run on the workers. Also: concurrent repeats sent by the test,
 * forged and malformed callbacks. Asserts on what n8n stored (REST API, event logs) and what the simulator got.
 */
import * as crypto from 'node:crypto';
import { callbackBatchWorkflow, callbackTriggerWorkflow, delay, HOLD_MARKER, QueueHarness, TRIGGER_NODE, waitFor } from './harness';
import type { ExecutionSummary } from './harness';
import { signCallbackUrl, tokenKey } from '../../nodes/shared/callback/token';
import { expectForgedAndMalformedRefused, postJson } from '../support/callbacks';

const N = 10;
const RUN = 'cb';
const BATCH = { id: 'queueCallbackBatch', path: 'queue-callback-batch' };
const TRIGGER = { id: 'queueCallbackTrigger', webhookId: crypto.randomUUID() };

function batchWorkflow(): any {
	return callbackBatchWorkflow({ ...BATCH, name: 'Queue mode: batch created with a callback URL', prefix: 'queue' });
}

function triggerWorkflow(uploadUrl: string): any {
	return callbackTriggerWorkflow({ id: TRIGGER.id, name: 'Queue mode: finished tasks by callback → upload', webhookId: TRIGGER.webhookId, uploadUrl });
}

let h: QueueHarness;
let triggerUrl: string;
let batchAnswer: { status: number; body: string; ms: number };
let createdIds: string[] = [];
/** A task of the account that stays unfinished (created straight at the simulator). */
let heldTaskId: string;
/** A task created straight at the simulator, without callback URL; its final callback is sent by the test. */
let extraTaskId: string;

const figures: string[] = [];
function report(line: string): void {
	figures.push(line);
	process.stderr.write(`[queue] ${line}\n`);
}

/**
 * Creates a task straight at the simulator (not through n8n); with `signedFor`, with that callback URL and
 * the token Create Omni Image would add to it. Returns the task id and the callback URL it was created with.
 */
async function createAtSimulator(prompt: string, signedFor?: string): Promise<{ taskId: string; callbackUrl?: string }> {
	const externalTaskId = `queue-extra-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
	// The simulator's own callbacks go to the same path on a port nothing listens on: the test sends the final one.
	const unreachable = signedFor && `http://127.0.0.1:9${new URL(signedFor).pathname}`;
	const signed = unreachable ? new URL(signCallbackUrl(tokenKey(h.sim.apiKey), unreachable, externalTaskId, Date.now())) : undefined;
	const callbackUrl = signed && `${signedFor}${signed.search}`;
	const body = signed ? { prompt, callback_url: signed.toString(), external_task_id: externalTaskId } : { prompt };
	const res = await fetch(`${h.sim.apiUrl}/kling/v1/images/omni-image`, {
		method: 'POST',
		headers: { authorization: `Bearer ${h.sim.apiKey}`, 'content-type': 'application/json' },
		body: JSON.stringify(body),
	});
	return { taskId: ((await res.json()) as { data: { task_id: string } }).data.task_id, callbackUrl };
}

/** Queries the test made itself (to build a final callback body), per task. */
const ownQueries = new Map<string, number>();

/** The task as the API answers it now (what a real final callback carries); counted in ownQueries. */
async function taskBody(taskId: string): Promise<unknown> {
	ownQueries.set(taskId, (ownQueries.get(taskId) ?? 0) + 1);
	const res = await fetch(`${h.sim.apiUrl}/kling/v1/images/omni-image/${taskId}`, { headers: { authorization: `Bearer ${h.sim.apiKey}` } });
	return ((await res.json()) as { data: unknown }).data;
}

async function triggerRuns(): Promise<ExecutionSummary[]> {
	return (await h.executions(TRIGGER.id)).sort((a, b) => Number(a.id) - Number(b.id));
}

function seconds(ms: number): string {
	return `${(ms / 1000).toFixed(1)} s`;
}

beforeAll(async () => {
	const started = Date.now();
	h = await QueueHarness.start({
		simulator: {
			taskDurationMs: 2000,
			// n8n answers a webhook after loading the workflow; on 2 busy cores that can take seconds.
			callbackTimeoutMs: 20_000,
		},
		workflows: (uploadUrl) => [batchWorkflow(), triggerWorkflow(uploadUrl)],
	});
	triggerUrl = `${h.baseUrl}/webhook/${TRIGGER.webhookId}/kling`;
	for (const url of [triggerUrl, `${h.baseUrl}/webhook/${BATCH.path}`]) {
		await waitFor(`webhook ${url}`, async () => /not registered for GET/.test(await (await fetch(url)).text()), 30000);
	}
	report(`scenario 2 set-up: n8n ${h.state.version}, main + ${h.workers.length} workers, ready in ${seconds(Date.now() - started)}`);
}, 5 * 60 * 1000);

afterAll(async () => {
	if (h) await h.stop();
	if (figures.length > 0) process.stderr.write(`\n[queue] summary\n${figures.map((f) => `  ${f}`).join('\n')}\n\n`);
});

describe('scenario 2: the callback trigger in queue mode', () => {
	test('workflow A creates the batch without waiting, with the trigger\'s production URL as callback, on a worker', async () => {
		batchAnswer = await h.callWebhook(BATCH.path, { run: RUN, count: N, callback_url: triggerUrl });
		expect(batchAnswer.status).toBe(200);
		const tasks = JSON.parse(batchAnswer.body) as Array<{ task_id: string }>;
		createdIds = tasks.map((t) => t.task_id);
		expect(createdIds).toHaveLength(N);
		const creates = h.creates(RUN);
		expect(creates.map((c) => c.taskId).sort()).toEqual([...createdIds].sort());
		for (const create of h.sim.apiRequests('create').filter((r) => createdIds.includes(r.taskId!))) {
			expect((create.body as { callback_url: string }).callback_url.startsWith(`${triggerUrl}?kling_token=`)).toBe(true);
		}
		const [run] = await h.executions(BATCH.id);
		expect(run).toMatchObject({ status: 'success', mode: 'webhook' });
		const worker = await waitFor('the batch execution in a worker event log', () => h.workerOfExecutions().get(run.id), 15000);
		// That nothing polled is checked below: each task was queried once in all, by the trigger.
		report(
			`scenario 2: workflow A created ${N} tasks in ${seconds(batchAnswer.ms)} (webhook answer; stored ` +
				`${seconds(Date.parse(run.stoppedAt!) - Date.parse(run.startedAt ?? run.createdAt))}) on ${worker}`,
		);
	});

	test('forged (no task token) and malformed callbacks get a 4xx and start nothing', async () => {
		heldTaskId = (await createAtSimulator(`a paper crane${HOLD_MARKER}`)).taskId;
		await expectForgedAndMalformedRefused(h.sim, triggerUrl, heldTaskId);
		// (That none of them started an execution is checked below: exactly one execution per task.)
	});

	test('the provider\'s callbacks (final repeated) reach the main and start one trigger execution per task', async () => {
		await waitFor('the batch tasks to finish', () => createdIds.every((id) => h.sim.taskStatus(id) === 'succeed'), 60000);
		await waitFor(
			'every repeated final callback',
			() => createdIds.every((id) => h.sim.callbacks().some((c) => c.taskId === id && c.kind === 'repeat')),
			60000,
		);
		await h.sim.flushCallbacks();
		const delivered = h.sim.callbacks().filter((c) => createdIds.includes(c.taskId!));
		// submitted, processing, succeed, succeed again: all to the main's port, all answered 200.
		for (const id of createdIds) {
			const kinds = delivered.filter((c) => c.taskId === id && c.ok).map((c) => `${c.kind}:${c.taskStatus}`);
			expect([id, kinds]).toEqual([id, ['status:submitted', 'status:processing', 'status:succeed', 'repeat:succeed']]);
		}
		for (const c of delivered) expect(c.url.startsWith(`${triggerUrl}?kling_token=`)).toBe(true);
		await waitFor('N finished trigger executions', async () => {
			const runs = await triggerRuns();
			return runs.length >= N && runs.every((r) => r.stoppedAt);
		}, 60000);
		report(
			`scenario 2: ${delivered.length} provider callbacks for ${N} tasks (${delivered.filter((c) => !c.ok).length} failed deliveries), ` +
				`all to the main's ${h.baseUrl}`,
		);
	});

	test('concurrent repeats: of a delivered task start nothing; of a new task\'s final callback start one execution', async () => {
		// The bodies the provider sent as final callbacks (no query: each task must show one, the trigger's).
		const repeatedIds = createdIds.slice(0, 3);
		const finals = repeatedIds.map((id) => h.sim.callbacks().find((c) => c.taskId === id && c.kind === 'status' && c.taskStatus === 'succeed')!);
		const repeats = await Promise.all(finals.flatMap((final) => Array.from({ length: 4 }, () => postJson(final.url, final.body))));
		for (const answer of repeats) expect(answer).toEqual({ status: 200, body: expect.objectContaining({ started: false, reason: 'already handled' }) });

		const extra = await createAtSimulator('queue extra a paper boat on a pond', triggerUrl);
		extraTaskId = extra.taskId;
		await waitFor('the extra task to finish', () => h.sim.taskStatus(extraTaskId) === 'succeed', 30000);
		const body = await taskBody(extraTaskId);
		const before = (await triggerRuns()).length;
		const answers = await Promise.all(Array.from({ length: 8 }, () => postJson(extra.callbackUrl!, body)));
		expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
		expect(answers.filter((a) => a.body.started === true)).toHaveLength(1);
		await waitFor('its execution', async () => {
			const runs = await triggerRuns();
			return runs.length > before && runs.every((r) => r.stoppedAt);
		}, 30000);
		report(`scenario 2: ${repeats.length} concurrent repeats of 3 delivered tasks: 0 started; 8 concurrent finals of a new task: 1 started`);
	});

	test('n8n stored one successful execution per task, each run by a worker; the main ran none', async () => {
		// Late repeats and retries have had time to start something; they must not have.
		await delay(2000);
		const runs = await triggerRuns();
		const tasks = [...createdIds, extraTaskId];
		expect(runs).toHaveLength(tasks.length);
		expect(runs.map((r) => [r.mode, r.status])).toEqual(runs.map(() => ['webhook', 'success']));

		const byTask = new Map<string, string>();
		const sources = new Set<string>();
		let firstBinaryId = '';
		for (const run of runs) {
			const { data } = await h.execution(run.id);
			const items = data.resultData.runData[TRIGGER_NODE][0].data.main[0];
			expect(items).toHaveLength(1);
			const taskId = items[0].json.task_id;
			expect(byTask.has(taskId)).toBe(false);
			byTask.set(taskId, run.id);
			// The image the worker downloaded (in the trigger's execute step) is in the database with the
			// simulator's bytes, filed under the execution, so deleting or pruning the execution removes it.
			const binary = items[0].binary.data;
			expect(binary.id).toMatch(/^database:/);
			const fileId = binary.id.slice('database:'.length);
			const [row] = await h.sql(`SELECT "sourceType", "sourceId", encode(data, 'hex') FROM binary_data WHERE "fileId" = '${fileId}'`);
			expect(row.slice(0, 2)).toEqual(['execution', String(run.id)]);
			expect(Buffer.from(row[2], 'hex').equals(h.sim.expectedImageBytes(items[0].json.image.url))).toBe(true);
			sources.add(row[1]);
			firstBinaryId ||= binary.id;
			if (createdIds.includes(taskId)) {
				expect(items[0].json.external_task_id).toBe(`queue-${RUN}-${createdIds.indexOf(taskId) + 1}`);
			}
		}
		expect([...byTask.keys()].sort()).toEqual([...tasks].sort());
		// Filed under the execution, the editor's binary view (GET /rest/binary-data) serves them.
		expect((await h.binaryBytes(firstBinaryId)).length).toBeGreaterThan(0);
		report(`scenario 2: the trigger's images are in n8n's database byte-equal, each filed under its own execution (${sources.size} source ids), and the editor's binary view serves them`);

		const ids = runs.map((r) => r.id);
		const workerOf = await h.workersOf(ids);
		const perWorker = new Map<string, string[]>();
		for (const id of ids) perWorker.set(workerOf.get(id)!, [...(perWorker.get(workerOf.get(id)!) ?? []), `#${id}`]);
		const durations = runs.map((r) => Date.parse(r.stoppedAt!) - Date.parse(r.startedAt ?? r.createdAt)).sort((a, b) => a - b);
		const firstCreate = Math.min(...h.creates(RUN).map((c) => c.at));
		const batchRunIds = new Set(createdIds.map((id) => byTask.get(id)!));
		const lastEnd = Math.max(...runs.filter((r) => batchRunIds.has(r.id)).map((r) => Date.parse(r.stoppedAt!)));
		report(
			`scenario 2: ${runs.length} trigger executions for ${tasks.length} tasks, per worker: ` +
				`${[...perWorker].map(([w, list]) => `${w}: ${list.length} (${list.join(', ')})`).join('; ')}; ` +
				`each ${seconds(durations[0])}–${seconds(durations[durations.length - 1])} stored; first create to last execution end ` +
				`${seconds(lastEnd - firstCreate)} for the batch (tasks take 2 s)`,
		);
	});

	test('every image was uploaded once by workflow B, byte-equal to what the simulator served', () => {
		const tasks = [...createdIds, extraTaskId];
		const uploads = h.receiver.uploads.filter((u) => tasks.includes(u.fields.task_id));
		expect(uploads.map((u) => u.fields.task_id).sort()).toEqual([...tasks].sort());
		expect(h.receiver.uploads).toHaveLength(tasks.length);
		for (const upload of uploads) {
			expect(upload.error).toBeUndefined();
			expect(upload.files).toHaveLength(1);
			expect(upload.files[0].mimeType).toBe('image/png');
			expect(upload.files[0].bytes.equals(h.sim.expectedImageBytes(upload.fields.image_url))).toBe(true);
		}
	});

	test('the simulator got one verification query per task and one download per image, no more', () => {
		const tasks = [...createdIds, extraTaskId];
		const queries = h.sim.apiRequests('query');
		for (const id of tasks) expect([id, h.queries([id]).length - (ownQueries.get(id) ?? 0)]).toEqual([id, 1]);
		// None for the forged callbacks (no task token), only the test's own besides.
		expect(h.queries([heldTaskId])).toHaveLength(0);
		const own = [...ownQueries.values()].reduce((a, b) => a + b, 0);
		expect(queries).toHaveLength(tasks.length + own);
		expect(h.sim.apiRequests('create')).toHaveLength(N + 2);
		expect(h.sim.imageRequests()).toHaveLength(N + 1);
		report(
			`scenario 2: ${queries.length - own} trigger queries for ${tasks.length} real tasks (1 each), none for forged callbacks, ` +
				`${h.sim.imageRequests().length} image downloads (by the workers, in the trigger's execute step)`,
		);
	});

	test('the once-per-task marks are in the workflow\'s static data in the database (written by the main)', async () => {
		const { data } = await h.rest('GET', `/rest/workflows/${TRIGGER.id}`);
		const staticData = typeof data.staticData === 'string' ? JSON.parse(data.staticData) : data.staticData;
		const marks = Object.keys(staticData?.[`node:${TRIGGER_NODE}`]?.emittedTasks ?? {});
		expect(marks.sort()).toEqual([...createdIds, extraTaskId].sort());
		report(`scenario 2: static data holds ${marks.length} emitted tasks after the workers ran every execution`);
	});
});
