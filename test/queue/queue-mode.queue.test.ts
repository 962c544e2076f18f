/*
 * The package in n8n's queue mode: a main takes production webhooks, Redis hands the executions to two
 * `n8n worker` processes (concurrency 5 each), all share one Postgres database, binary data lives in the
 * database. Each scenario checks what n8n stored (REST API, event logs) and what the simulator received.
 * n8n's queue settings are its defaults (a dead worker's job is noticed through Bull's 60 s lock and 30 s
 * stall check), so the figures printed are what users get.
 */
import * as os from 'node:os';
import { delay, HOLD_MARKER, QueueHarness, waitFor, WORKFLOWS } from './harness';
import type { ExecutionSummary } from './harness';

const BATCH_SIZE = 20;
const PARALLEL_RUNS = 6;

let h: QueueHarness;

/** One line per figure, kept for the summary printed at the end. */
const figures: string[] = [];
function report(line: string): void {
	figures.push(line);
	process.stderr.write(`[queue] ${line}\n`);
}

beforeAll(async () => {
	const started = Date.now();
	h = await QueueHarness.start();
	report(
		`set-up: n8n ${h.state.version}, Redis ${h.state.services.redisVersion}, PostgreSQL ${h.state.services.postgresVersion.split(' ')[0]}, ` +
			`main + ${h.workers.length} workers (concurrency 5), ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
	);
}, 5 * 60 * 1000);

afterAll(async () => {
	if (h) await h.stop();
	if (figures.length > 0) process.stderr.write(`\n[queue] summary\n${figures.map((f) => `  ${f}`).join('\n')}\n\n`);
});

function span(executions: ExecutionSummary[]): number {
	const start = Math.min(...executions.map((e) => Date.parse(e.startedAt ?? e.createdAt)));
	const stop = Math.max(...executions.map((e) => Date.parse(e.stoppedAt!)));
	return stop - start;
}

function seconds(ms: number): string {
	return `${(ms / 1000).toFixed(1)} s`;
}

describe('scenario 1: six 20-prompt batches through production webhooks at once', () => {
	const runs = Array.from({ length: PARALLEL_RUNS }, (_, i) => `six-${i + 1}`);
	let singleMs: number;
	let sixMs: number;
	let byRun: Map<string, ExecutionSummary>;

	test('all six answer, every execution succeeded on a worker, and both workers took some', async () => {
		// A warm-up run (each worker loads the node the first time), then one run alone for comparison.
		expect((await h.callWebhook(WORKFLOWS.batch.path, { run: 'warm', count: BATCH_SIZE })).status).toBe(200);
		const single = await h.callWebhook(WORKFLOWS.batch.path, { run: 'single', count: BATCH_SIZE });
		expect(single.status).toBe(200);
		singleMs = single.ms;

		const started = Date.now();
		const answers = await Promise.all(runs.map((run) => h.callWebhook(WORKFLOWS.batch.path, { run, count: BATCH_SIZE })));
		sixMs = Date.now() - started;
		for (const answer of answers) expect(answer.status).toBe(200);

		// Which execution served which run: the uploads carry the execution id and the task id; the task's
		// prompt (at the simulator) names the run.
		const runOfExecution = new Map<string, string>();
		for (const upload of h.receiver.uploads) {
			const task = h.sim.tasks.get(upload.fields.task_id);
			const run = /^queue (\S+) prompt /.exec(task?.body?.prompt ?? '')?.[1];
			if (run) runOfExecution.set(upload.fields.execution_id, run);
		}
		const stored = await h.executions(WORKFLOWS.batch.id);
		byRun = new Map(stored.filter((e) => runOfExecution.has(e.id)).map((e) => [runOfExecution.get(e.id)!, e]));
		expect([...byRun.keys()].sort()).toEqual(['single', 'warm', ...runs].sort());
		for (const run of runs) {
			expect(byRun.get(run)).toMatchObject({ status: 'success', mode: 'webhook' });
		}

		// Which worker ran each execution: n8n's own record (the worker's event log), checked against the
		// workers' log lines.
		const ids = runs.map((run) => byRun.get(run)!.id);
		const workerOf = await h.workersOf(ids);
		const perWorker = new Map<string, string[]>();
		for (const run of runs) {
			const id = byRun.get(run)!.id;
			const worker = workerOf.get(id)!;
			perWorker.set(worker, [...(perWorker.get(worker) ?? []), `${run}=#${id}`]);
		}
		expect([...perWorker.keys()].sort()).toEqual(h.workers.map((w) => w.name).sort());

		const sixStored = runs.map((run) => byRun.get(run)!);
		report(
			`scenario 1: ${PARALLEL_RUNS} × ${BATCH_SIZE} prompts at once: ${seconds(sixMs)} until the last webhook answered ` +
				`(n8n's start-to-stop span ${seconds(span(sixStored))}); one alone: ${seconds(singleMs)} ` +
				`(stored ${seconds(span([byRun.get('single')!]))})`,
		);
		report(`scenario 1: executions per worker: ${[...perWorker].map(([w, list]) => `${w}: ${list.length} (${list.join(', ')})`).join('; ')}`);
		const durations = sixStored.map((e) => Date.parse(e.stoppedAt!) - Date.parse(e.startedAt ?? e.createdAt)).sort((x, y) => x - y);
		report(
			`scenario 1: each of the six took ${seconds(durations[0])}–${seconds(durations[durations.length - 1])} (stored start to stop); ` +
				`machine load average ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} on ${os.cpus().length} cores`,
		);
	});

	test('one create per prompt: no duplicate and none missing', () => {
		for (const run of [...runs, 'single', 'warm']) {
			const creates = h.creates(run);
			const prompts = creates.map((c) => c.prompt);
			expect(new Set(prompts).size).toBe(prompts.length);
			expect(prompts.sort()).toEqual(Array.from({ length: BATCH_SIZE }, (_, i) => `queue ${run} prompt ${i + 1}`).sort());
		}
		report(`scenario 1: ${runs.reduce((n, run) => n + h.creates(run).length, 0)} creates for ${PARALLEL_RUNS * BATCH_SIZE} prompts, 0 duplicates`);
	});

	test('every image reached the upload node byte-equal to what the simulator served', () => {
		for (const run of runs) {
			const id = byRun.get(run)!.id;
			const uploads = h.receiver.uploads.filter((u) => u.fields.execution_id === id);
			expect(uploads).toHaveLength(BATCH_SIZE);
			const created = new Set(h.creates(run).map((c) => c.taskId));
			expect(new Set(uploads.map((u) => u.fields.task_id))).toEqual(created);
			for (const upload of uploads) {
				expect(upload.error).toBeUndefined();
				expect(upload.files).toHaveLength(1);
				expect(upload.files[0].mimeType).toBe('image/png');
				expect(upload.files[0].bytes.equals(h.sim.expectedImageBytes(upload.fields.image_url))).toBe(true);
			}
		}
	});

	test('n8n stored every image in the database, and reading it back through the main gives the same bytes', async () => {
		let checked = 0;
		for (const run of runs) {
			const { data } = await h.execution(byRun.get(run)!.id);
			const items = data.resultData.runData['Create Omni Image'][0].data.main[0];
			expect(items).toHaveLength(BATCH_SIZE);
			for (const item of items) {
				const binary = item.binary.data;
				expect(binary.id).toMatch(/^database:/);
				const bytes = await h.binaryBytes(binary.id);
				expect(bytes.equals(h.sim.expectedImageBytes(item.json.image.url))).toBe(true);
				checked++;
			}
		}
		expect(checked).toBe(PARALLEL_RUNS * BATCH_SIZE);
		report(`scenario 1: ${checked}/${PARALLEL_RUNS * BATCH_SIZE} images byte-equal at the upload receiver and read back from n8n's database`);
	});
});

describe('scenario 3: stopping a waiting execution that runs on a worker', () => {
	test('POST /rest/executions/:id/stop ends it within seconds, polling stops, the stored error names the tasks', async () => {
		const run = 'stop';
		expect((await h.callWebhook(WORKFLOWS.background.path, { run, count: 3, marker: HOLD_MARKER })).status).toBe(200);
		const taskIds = await waitFor('3 tasks created', () => {
			const creates = h.creates(run);
			return creates.length === 3 && creates.map((c) => c.taskId!);
		}, 30000);
		await waitFor('each task polled twice', () => taskIds.every((id) => h.queries([id]).length >= 2), 30000);
		const execution = await waitFor('the running execution', async () =>
			(await h.executions(WORKFLOWS.background.id)).find((e) => e.status === 'running'), 10000);
		const worker = await waitFor('its worker', () => h.workerOfExecutions().get(execution.id), 10000);

		const stopAt = Date.now();
		const answer = await h.rest('POST', `/rest/executions/${execution.id}/stop`);
		const answeredMs = Date.now() - stopAt;
		expect(answer.data.status).toBe('canceled');

		// Polling stops: no query for these tasks for 3 s, then none in 3 s more.
		const lastQueryAt = await waitFor('queries to stop', () => {
			const last = Math.max(...h.queries(taskIds).map((q) => q.at));
			return Date.now() - last > 3000 && last;
		}, 30000);
		const afterStop = h.queries(taskIds).filter((q) => q.at > stopAt).length;
		const settled = h.queries(taskIds).length;
		await delay(3000);
		expect(h.queries(taskIds).length).toBe(settled);
		expect(lastQueryAt - stopAt).toBeLessThan(3000);

		// What n8n stored: canceled, and it stays so once the worker has let go.
		const stored = (await h.executions(WORKFLOWS.background.id)).find((e) => e.id === execution.id)!;
		expect(stored.status).toBe('canceled');
		expect(Date.parse(stored.stoppedAt!) - stopAt).toBeLessThan(5000);
		// The worker let go of the job (it logs the cancelled execution) and saved the node's own error, which
		// names the created tasks so that they can be picked up later.
		const workerLog = h.workers.find((w) => w.name === worker)!;
		await waitFor('the worker to log the end of the job', () =>
			new RegExp(`execution ${execution.id} \\(job \\d+\\)`).test(workerLog.output().split(`Worker started execution ${execution.id}`)[1] ?? ''), 10000);
		const { data, raw } = await h.execution(execution.id);
		const error = data?.resultData?.error;
		const idsInExecution = taskIds.filter((id) => raw.includes(id));
		expect(idsInExecution).toEqual(taskIds);
		report(
			`scenario 3: execution #${execution.id} on ${worker}: stop answered in ${answeredMs} ms (status "${answer.data.status}"); ` +
				`last query ${lastQueryAt - stopAt} ms after the stop request (${afterStop} queries after it, none once settled); ` +
				`stored "${stored.status}" ${Date.parse(stored.stoppedAt!) - stopAt} ms after the request, error ${JSON.stringify(error?.message)}; ` +
				`task ids in the stored execution: ${idsInExecution.length}/${taskIds.length}`,
		);
		report(`scenario 3: error description: ${JSON.stringify(error?.description)}`);
	});
});

describe('scenario 4: a worker killed in the middle of a batch', () => {
	test('n8n fails the execution once the job stalls, nothing is created twice, and the created task ids are not in what n8n stored', async () => {
		const run = 'kill';
		expect((await h.callWebhook(WORKFLOWS.background.path, { run, count: BATCH_SIZE, marker: HOLD_MARKER })).status).toBe(200);
		const taskIds = await waitFor(`${BATCH_SIZE} tasks created`, () => {
			const creates = h.creates(run);
			return creates.length === BATCH_SIZE && creates.map((c) => c.taskId!);
		}, 30000);
		await waitFor('every task polled', () => taskIds.every((id) => h.queries([id]).length >= 1), 30000);
		const execution = await waitFor('the running execution', async () =>
			(await h.executions(WORKFLOWS.background.id)).find((e) => e.status === 'running'), 10000);
		const victimName = await waitFor('its worker', () => h.workerOfExecutions().get(execution.id), 10000);
		const victim = h.workers.find((w) => w.name === victimName)!;

		const killAt = Date.now();
		const exit = await victim.kill('SIGKILL');
		expect(exit.signal).toBe('SIGKILL');

		// Nobody polls the tasks any more.
		await delay(2500);
		expect(h.queries(taskIds).filter((q) => q.at > killAt + 500)).toEqual([]);

		// n8n notices once the job's lock runs out (60 s) and a stall check (every 30 s) finds it: the job
		// fails without a retry (n8n sets Bull's maxStalledCount to 0) and the main that enqueued it stores
		// the execution as failed, after a 30 s grace check: about 80–120 s, more on a busy machine.
		const ended = await waitFor('the execution to leave "running"', async () => {
			const e = (await h.executions(WORKFLOWS.background.id)).find((x) => x.id === execution.id);
			return e && !['running', 'new'].includes(e.status) && e;
		}, 240000, 1000);
		const noticedMs = Date.now() - killAt;
		expect(['error', 'crashed']).toContain(ended.status);

		// The surviving worker did not run it again: still one create per prompt.
		await delay(3000);
		expect(h.creates(run)).toHaveLength(BATCH_SIZE);

		// What a user sees: the stored execution holds no trace of the tasks the node created and paid for.
		const { summary, data, raw } = await h.execution(execution.id);
		const idsInExecution = taskIds.filter((id) => raw.includes(id));
		const idsInWorkerLog = taskIds.filter((id) => victim.output().includes(id));
		const ranNodes = Object.keys(data?.resultData?.runData ?? {});
		expect(idsInExecution).toEqual([]);
		expect(ranNodes).not.toContain('Create Omni Image');
		// What lets a user find them: "Generate External Task ID" (on in this workflow) put the execution id
		// into every task's external id, which CometAPI's task log shows.
		const externalIds = h.creates(run).map((c) => c.externalTaskId ?? '');
		expect(externalIds.filter((id) => id.startsWith(`n8n-${execution.id}-`))).toHaveLength(BATCH_SIZE);
		expect(summary.status).toBe('error');
		expect(data?.resultData?.error?.message).toMatch(/failed to be processed too many times/);
		report(
			`scenario 4: killed ${victimName} (SIGKILL) while execution #${execution.id} waited on ${BATCH_SIZE} tasks; ` +
				`n8n first listed it "${ended.status}" after ${seconds(noticedMs)}, stored "${summary.status}"; error shown: ${JSON.stringify(data?.resultData?.error?.message ?? null)}; ` +
				`nodes with stored output: [${ranNodes.join(', ')}]; task ids in the stored execution: ${idsInExecution.length}/${BATCH_SIZE}, ` +
				`in the dead worker's log: ${idsInWorkerLog.length}/${BATCH_SIZE}; creates after the crash: ${h.creates(run).length - BATCH_SIZE}; ` +
				`external task ids n8n-${execution.id}-…: ${externalIds.filter((id) => id.startsWith(`n8n-${execution.id}-`)).length}/${BATCH_SIZE} (e.g. ${externalIds[0]})`,
		);

		// The set-up recovers: the worker comes back and takes work again.
		const restartedAt = Date.now();
		await h.cluster.startWorker(victimName);
		const again = await h.callWebhook(WORKFLOWS.batch.path, { run: 'after-crash', count: 2 });
		expect(again.status).toBe(200);
		report(`scenario 4: ${victimName} restarted and a new batch succeeded ${seconds(Date.now() - restartedAt)} later`);
	}, 6 * 60 * 1000);
});
