/**
 * How a batch flows, from n8n's call to the output items:
 *
 * 1. `KlingOmniImage.node.ts`: n8n calls `execute()`, which hands over to `actions/router.ts`.
 * 2. `actions/router.ts` picks the operation; `actions/operationContext.ts` reads the options once
 *    for the run and opens one request session (limits, retries, timeouts, the stop signal).
 * 3. The operation (`actions/*.operation.ts`) turns every input item into a job (`runner/jobTypes.ts`)
 *    before anything is sent: a create body (`actions/createRequest.ts`) or an existing task's id.
 * 4. `TaskRunner.run` (this file) runs the jobs together: `runner/createQueue.ts` sends the creates
 *    within the account's parallel-task limit (`runner/slots.ts`), `runner/poller.ts` polls every
 *    task on one schedule, and each task that succeeds is downloaded as it ends (`taskOutput` in
 *    `shared/task/output.ts`). `runner/runProgress.ts` records what each item's task got to and, without
 *    "Continue On Fail", stops the run at its first failure and throws it with the other tasks listed.
 *    Get Task only reads each task once and skips the queue and the poller.
 * 5. Back in `actions/router.ts`, the outcomes become output items in input order, a failed item an
 *    error item ("Continue On Fail") or, as an agent's tool, one short JSON item per task.
 */

import type { NodeContext } from '../../shared/nodeContext';
import { asNodeError } from '../../shared/errors';
import { taskFailedError } from '../../shared/errors/task';
import type { RequestSession } from '../../shared/request/session';
import { taskItem, taskOutput } from '../../shared/task/output';
import type { KlingTask } from '../../shared/task/task';
import { RunProgress } from './runProgress';
import { CreateQueue, type CreateJob } from './createQueue';
import type { ItemOutcome, RunSettings, TaskJob } from './jobTypes';
import { TaskPoller, type PollRequest, type PollResult } from './poller';

/** The shortest wait between probes beyond the learned parallel-task limit. */
const MIN_PROBE_INTERVAL_MS = 5_000;

/** How often tasks created without waiting are checked while items wait for a slot. */
const SLOT_TRACKING_INTERVAL_MS = 5_000;

/**
 * Each item's outcome as it becomes known: at once (a create that failed, a task created without
 * waiting), or later, when a task's images have downloaded.
 */
class ItemOutcomes {
	private readonly byItem = new Map<number, ItemOutcome | Promise<ItemOutcome>>();

	set(itemIndex: number, outcome: ItemOutcome | Promise<ItemOutcome>): void {
		this.byItem.set(itemIndex, outcome);
	}

	/** Once the queue and the poller are done, every job has an outcome. */
	async inOrderOf(jobs: TaskJob[]): Promise<ItemOutcome[]> {
		return await Promise.all(
			jobs.map(async ({ itemIndex }) => {
				const outcome = this.byItem.get(itemIndex);
				if (outcome === undefined) throw new Error(`The run ended without an outcome for item ${itemIndex}`);
				return await outcome;
			}),
		);
	}
}

/**
 * Runs the jobs of one execution: creates go through the queue that keeps within the account's
 * parallel-task limit, every task is polled by one poller, and each is downloaded as it succeeds.
 * Without waiting, the run's tasks are polled only once the account's limit was reached (to know
 * when a slot frees), every few seconds, and no longer once every create is sent.
 */
export class TaskRunner {
	private readonly progress: RunProgress;

	private readonly outcomes = new ItemOutcomes();

	/** Slots held by each task this run created and polls. */
	private readonly slotsOf = new Map<PollRequest, number>();

	/** Created without waiting, not polled until the account's limit is reached. */
	private readonly untracked: PollRequest[] = [];

	private readonly poller: TaskPoller;

	private readonly queue: CreateQueue;

	constructor(
		private readonly ctx: NodeContext,
		session: RequestSession,
		private readonly settings: RunSettings,
	) {
		this.progress = new RunProgress(session, settings.failFast);
		const pollIntervalMs = settings.waitForCompletion ? settings.pollIntervalMs : SLOT_TRACKING_INTERVAL_MS;
		this.poller = new TaskPoller(this.ctx, this.progress.session, { ...settings, pollIntervalMs }, (request, result) =>
			this.settled(request, result),
		);
		this.queue = new CreateQueue(
			ctx,
			this.progress,
			{
				maxConcurrentCreates: settings.maxConcurrentRequests,
				probeIntervalMs: Math.max(MIN_PROBE_INTERVAL_MS, settings.pollIntervalMs),
				maxWaitMs: settings.maxWaitMs,
			},
			{
				created: (job, task, slots) => this.created(job, task, slots),
				failed: (job, failure) => this.outcomes.set(job.itemIndex, failure),
				limitReached: () => this.untracked.splice(0).forEach((request) => this.poller.add(request)),
			},
		);
	}

	private created(job: CreateJob, task: KlingTask, slots: number): void {
		const { itemIndex } = job;
		this.progress.record(itemIndex, 'created', task.task_id);
		// In n8n's log at once: if the process dies while waiting (a killed queue-mode worker), the
		// paid task's id is still on record.
		this.ctx.logger.info('Kling task created', { taskId: task.task_id, itemIndex, externalTaskId: job.externalTaskId });
		const request = { itemIndex, taskId: task.task_id, createdHere: true };
		this.slotsOf.set(request, slots);
		if (this.settings.waitForCompletion || this.queue.limitReached) {
			this.poller.add(request);
		} else {
			this.untracked.push(request);
		}
		if (!this.settings.waitForCompletion) this.outcomes.set(itemIndex, { itemIndex, items: [taskItem(task, itemIndex)] });
	}

	async run(jobs: TaskJob[]): Promise<ItemOutcome[]> {
		const polling = this.poller.run();
		for (const job of jobs) {
			if (job.kind !== 'existing') continue;
			this.progress.record(job.itemIndex, 'waiting', job.taskId);
			// A task made earlier is polled at once.
			this.poller.add({ itemIndex: job.itemIndex, taskId: job.taskId, createdHere: false }, 0);
		}
		await this.queue.run(jobs.filter((job): job is CreateJob => job.kind === 'create'));
		if (this.settings.waitForCompletion) this.poller.close();
		else this.poller.abandon();
		await polling;
		const outcomes = await this.outcomes.inOrderOf(jobs);
		this.progress.throwIfFailedFast();
		return outcomes;
	}

	private settled(request: PollRequest, result: PollResult): void {
		const slots = this.slotsOf.get(request);
		if (slots !== undefined) this.queue.release(slots);
		if (this.settings.waitForCompletion) this.outcomes.set(request.itemIndex, this.finish(request, result));
	}

	private async finish(request: PollRequest, polled: PollResult): Promise<ItemOutcome> {
		const { itemIndex, taskId } = request;
		if ('error' in polled) {
			return this.progress.failed(itemIndex, polled.error, taskId, polled.stillRunning ? 'may still finish' : 'failed');
		}
		const task = polled.task;
		if (task.status === 'failed') {
			return this.progress.failed(itemIndex, taskFailedError(this.ctx.getNode(), taskId, task.status_message, itemIndex), taskId);
		}
		this.progress.record(itemIndex, 'downloading', taskId);
		try {
			const items = await taskOutput(this.ctx, this.progress.session, task, itemIndex, this.settings.download);
			this.progress.record(itemIndex, 'done', taskId);
			return { itemIndex, items };
		} catch (error) {
			return this.progress.failed(itemIndex, asNodeError(this.ctx.getNode(), error, itemIndex), taskId);
		}
	}
}
