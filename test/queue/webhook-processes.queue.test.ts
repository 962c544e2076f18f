/*
 * n8n's scaled set-up with the callback trigger: a main, two `n8n webhook` processes behind a round-robin
 * balancer (a small proxy on loopback), one worker, Redis and Postgres, binary data in the database.
 * Tasks are created through Create Omni Image (not waiting, Callback URL = the trigger's production URL
 * through the balancer, so each gets its kling_token); the simulator calls back through the balancer,
 * and the test re-sends final callbacks itself to the other webhook process, one after another at set
 * gaps and both at once. Counted: executions per task (n8n's REST API), uploads per task (what the
 * workflow did downstream), binary rows in the database before and after the executions are deleted.
 * The figures are recorded in docs/WEBHOOK-PROCESSES.md.
 */
import * as crypto from 'node:crypto';
import { callbackBatchWorkflow, callbackTriggerWorkflow, delay, QueueHarness, TRIGGER_NODE, waitFor } from './harness';
import type { ExecutionSummary, WebhookProcess } from './harness';
import { postJson } from '../support/callbacks';

const BATCH = { id: 'webhookProcessesBatch', path: 'webhook-processes-batch' };
const TRIGGER = { id: 'webhookProcessesTrigger', webhookId: crypto.randomUUID() };
/** The provider's repeat of a final callback comes this long after it (as measured with a real balancer). */
const REPEAT_DELAY_MS = 550;
/** Gaps between a final callback on one webhook process and its repeat on the other (0: both at once). */
const GAPS_MS = [0, 150, 500, 1000, 2000];
const TASKS_PER_GAP = 2;
/** Repeats at least this far apart should start nothing once the marks travel between the processes. */
const SAFE_GAP_MS = 1000;

function batchWorkflow(): any {
	return callbackBatchWorkflow({ ...BATCH, name: 'Webhook processes: batch created with a callback URL', prefix: 'wp' });
}

function triggerWorkflow(uploadUrl: string): any {
	return callbackTriggerWorkflow({ id: TRIGGER.id, name: 'Webhook processes: finished tasks by callback → upload', webhookId: TRIGGER.webhookId, uploadUrl });
}

let h: QueueHarness;
let hooks: WebhookProcess[];
const figures: string[] = [];
function report(line: string): void {
	figures.push(line);
	process.stderr.write(`[webhook processes] ${line}\n`);
}

function triggerPath(): string {
	return `/webhook/${TRIGGER.webhookId}/kling`;
}

/** Creates `count` tasks through workflow A; resolves with their ids. */
async function createTasks(run: string, count: number): Promise<string[]> {
	const answer = await h.callWebhook(BATCH.path, { run, count, callback_url: `${h.proxy!.url}${triggerPath()}` });
	expect(answer.status).toBe(200);
	return (JSON.parse(answer.body) as Array<{ task_id: string }>).map((t) => t.task_id);
}

/** The Callback URL the simulator received for a task (with its kling_token), on another origin. */
function callbackUrlAt(origin: string, taskId: string): string {
	const create = h.sim.apiRequests('create').find((r) => r.taskId === taskId)!;
	const url = new URL((create.body as { callback_url: string }).callback_url);
	return `${origin}${url.pathname}${url.search}`;
}

/** The body of the provider's final callback for a task. */
function finalBody(taskId: string): unknown {
	return h.sim.callbacks().find((c) => c.taskId === taskId && c.kind === 'status' && c.taskStatus === 'succeed')!.body;
}

function taskIdOf(body: string): string | undefined {
	try {
		return (JSON.parse(body) as { task_id?: string }).task_id;
	} catch {
		return undefined;
	}
}

async function triggerRuns(): Promise<ExecutionSummary[]> {
	return (await h.executions(TRIGGER.id)).sort((a, b) => Number(a.id) - Number(b.id));
}

/** Waits until no trigger execution is running and none was added for a while; returns them all. */
async function settledRuns(quietMs = 3000): Promise<ExecutionSummary[]> {
	let last = -1;
	let since = Date.now();
	return await waitFor('trigger executions to settle', async () => {
		const runs = await triggerRuns();
		if (runs.length !== last || runs.some((r) => !r.stoppedAt)) {
			last = runs.length;
			since = Date.now();
			return false;
		}
		return Date.now() - since >= quietMs && runs;
	}, 120000, 500);
}

/** Task id → ids of the executions whose trigger emitted it. */
const taskOfExecution = new Map<string, string>();
async function executionsPerTask(runs: ExecutionSummary[]): Promise<Map<string, string[]>> {
	for (const run of runs) {
		if (taskOfExecution.has(run.id)) continue;
		const { data } = await h.execution(run.id);
		const items = data.resultData.runData[TRIGGER_NODE]?.[0]?.data?.main?.[0] ?? [];
		taskOfExecution.set(run.id, items[0]?.json?.task_id ?? '');
	}
	const perTask = new Map<string, string[]>();
	for (const run of runs) {
		const taskId = taskOfExecution.get(run.id)!;
		perTask.set(taskId, [...(perTask.get(taskId) ?? []), run.id]);
	}
	return perTask;
}

function uploadsOf(taskId: string): number {
	return h.receiver.uploads.filter((u) => u.fields.task_id === taskId).length;
}

function countBy<T>(values: T[]): string {
	const counts = new Map<T, number>();
	for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
	return [...counts].map(([v, n]) => `${n}× ${String(v)}`).join(', ');
}

beforeAll(async () => {
	const started = Date.now();
	h = await QueueHarness.start({
		workers: 1,
		webhookProcesses: 2,
		simulator: { taskDurationMs: 2000, callbackTimeoutMs: 20_000, callbackRepeatDelayMs: REPEAT_DELAY_MS },
		workflows: (uploadUrl) => [batchWorkflow(), triggerWorkflow(uploadUrl)],
	});
	hooks = h.webhookProcesses;
	// Each webhook process finds the trigger's webhook (registered by the main) in the shared database.
	for (const url of [...hooks.map((p) => `${p.url}${triggerPath()}`), `${h.baseUrl}/webhook/${BATCH.path}`]) {
		await waitFor(`webhook ${url}`, async () => /not registered for GET/.test(await (await fetch(url)).text()), 30000);
	}
	report(`set-up: n8n ${h.state.version}, main + ${hooks.length} webhook processes behind a round-robin proxy + ${h.workers.length} worker, ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 6 * 60 * 1000);

afterAll(async () => {
	if (h) await h.stop();
	if (figures.length > 0) process.stderr.write(`\n[webhook processes] summary\n${figures.map((f) => `  ${f}`).join('\n')}\n\n`);
});

describe('the callback trigger behind two n8n webhook processes', () => {
	let providerTasks: string[] = [];
	const countsByGap = new Map<number, number[]>();
	const uploadsByGap = new Map<number, number[]>();

	test('the provider\'s callbacks through the balancer (final, then its repeat 0.55 s later): each task starts, once or twice', async () => {
		providerTasks = await createTasks('provider', 6);
		await waitFor(
			'every repeated final callback',
			() => providerTasks.every((id) => h.sim.callbacks().some((c) => c.taskId === id && c.kind === 'repeat' && c.ok)),
			60000,
		);
		await h.sim.flushCallbacks();
		const perTask = await executionsPerTask(await settledRuns());
		const split = providerTasks.filter((id) => {
			const finals = h.proxy!.requests.filter((r) => taskIdOf(r.body) === id && /"task_status":"succeed"/.test(r.body));
			return new Set(finals.map((r) => r.target)).size > 1;
		});
		report(
			`provider flow: ${providerTasks.length} tasks, final and repeat on different processes for ${split.length}; ` +
				`executions that emitted each task: ${countBy(providerTasks.map((id) => perTask.get(id)?.length ?? 0))}`,
		);
		// A repeat on the other process starts a second execution (its webhook process has no mark: see
		// docs/WEBHOOK-PROCESSES.md), whose execution step finds the task delivered and emits nothing.
		for (const id of providerTasks) expect(perTask.get(id)?.length).toBeGreaterThanOrEqual(1);
		for (const id of providerTasks) expect(perTask.get(id)!.length).toBeLessThanOrEqual(2);
		report(`provider flow: uploads per task: ${countBy(providerTasks.map(uploadsOf))}`);
		for (const id of providerTasks) expect([id, uploadsOf(id)]).toEqual([id, 1]);
	});

	test('a final callback re-sent to the other webhook process seconds later delivers nothing again', async () => {
		const before = (await settledRuns(0)).length;
		const stored = await h.sql(`SELECT coalesce("staticData"::text, 'null') FROM workflow_entity WHERE id = '${TRIGGER.id}'`);
		const marks = Object.keys(JSON.parse(stored[0]?.[0] ?? 'null')?.[`node:${TRIGGER_NODE}`]?.emittedTasks ?? {});
		report(`static data in the database after the provider flow: ${marks.length} marks (${providerTasks.filter((id) => marks.includes(id)).length} of the ${providerTasks.length} tasks)`);
		const uploadsBefore = h.receiver.uploads.length;
		for (const id of providerTasks) {
			const finalTarget = h.proxy!.requests.find((r) => taskIdOf(r.body) === id && /"task_status":"succeed"/.test(r.body))!.target;
			const other = hooks.find((p) => p.url !== finalTarget)!;
			expect((await postJson(callbackUrlAt(other.url, id), finalBody(id))).status).toBe(200);
		}
		const runs = await settledRuns();
		const perTask = await executionsPerTask(runs);
		report(
			`re-sent to the other process after the executions: ${runs.length - before} new executions, ` +
				`${h.receiver.uploads.length - uploadsBefore} new uploads, executions that emitted each task now ${countBy(providerTasks.map((id) => perTask.get(id)?.length ?? 0))}`,
		);
		expect(h.receiver.uploads.length).toBe(uploadsBefore);
	});

	test('a final callback on one process and its repeat on the other: measured per gap', async () => {
		// The provider's own callbacks for these tasks are held by the balancer; the test delivers them.
		h.proxy!.hold = true;
		const tasks = await createTasks('gaps', GAPS_MS.length * TASKS_PER_GAP);
		await waitFor('the held repeats', () => tasks.every((id) => h.sim.callbacks().some((c) => c.taskId === id && c.kind === 'repeat' && c.ok)), 60000);
		await h.sim.flushCallbacks();
		h.proxy!.hold = false;
		const [first, second] = hooks;
		const byGap = new Map<number, string[]>();
		const answersByTask = new Map<string, number[]>();
		for (const [g, gap] of GAPS_MS.entries()) {
			const group = tasks.slice(g * TASKS_PER_GAP, (g + 1) * TASKS_PER_GAP);
			byGap.set(gap, group);
			await Promise.all(
				group.map(async (id) => {
					const one = postJson(callbackUrlAt(first.url, id), finalBody(id));
					if (gap > 0) await delay(gap);
					const two = postJson(callbackUrlAt(second.url, id), finalBody(id));
					answersByTask.set(id, (await Promise.all([one, two])).map((a) => a.status));
				}),
			);
			await delay(500);
		}
		const perTask = await executionsPerTask(await settledRuns());
		const lines: string[] = [];
		for (const [gap, group] of byGap) {
			const counts = group.map((id) => perTask.get(id)?.length ?? 0);
			countsByGap.set(gap, counts);
			lines.push(`${gap === 0 ? 'at once' : `${gap} ms`}: ${counts.join('+')} executions emitting it, ${group.map(uploadsOf).join('+')} uploads`);
			for (const id of group) expect(answersByTask.get(id)).toEqual([200, 200]);
			for (const count of counts) expect(count).toBeGreaterThanOrEqual(1);
			uploadsByGap.set(gap, group.map(uploadsOf));
		}
		report(`final on ${first.name}, repeat on ${second.name} (${TASKS_PER_GAP} tasks per gap): ${lines.join('; ')}`);
	});

	test(`a repeat ${SAFE_GAP_MS} ms or more after the final, on the other process, delivers nothing again`, () => {
		for (const [gap, uploads] of uploadsByGap) if (gap >= SAFE_GAP_MS) expect([gap, uploads]).toEqual([gap, uploads.map(() => 1)]);
	});

	// The trigger downloads in its execute step, inside the execution: the images are filed under the
	// execution, and deleting (or pruning) the executions removes them (downloads in webhook() were filed
	// under n8n's temporary id "temp" in database mode and stayed forever).
	test('the trigger\'s images are filed under their executions, and deleting the executions removes them', async () => {
		const runs = await settledRuns(0);
		const ids = runs.map((r) => r.id);
		const rowsBySource = async () =>
			new Map((await h.sql(`SELECT "sourceId", count(*) FROM binary_data GROUP BY 1`)).map(([source, n]) => [source, Number(n)]));
		const before = await rowsBySource();
		const underRuns = ids.reduce((sum, id) => sum + (before.get(id) ?? 0), 0);
		const underTemp = before.get('temp') ?? 0;
		await h.rest('POST', '/rest/executions/delete', { ids });
		expect(await triggerRuns()).toHaveLength(0);
		const after = await rowsBySource();
		const left = [...after.values()].reduce((a, b) => a + b, 0);
		report(
			`binary rows: ${underRuns} under the ${ids.length} trigger executions and ${underTemp} under "temp" before deleting them; ` +
				`${left} rows left after (${after.get('temp') ?? 0} under "temp")`,
		);
		expect(underTemp).toBe(0);
		// One image per delivered task (executions that dropped a repeat downloaded nothing).
		expect(underRuns).toBe(h.receiver.uploads.length);
		expect(left).toBe(0);
	});
});
