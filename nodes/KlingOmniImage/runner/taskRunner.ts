import type { NodeContext } from '../../shared/context';
import { asNodeError } from '../../shared/errors';
import { taskFailedError } from '../../shared/errors/task';
import type { RequestSession } from '../../shared/request/session';
import { taskItem, taskOutput } from '../../shared/task/output';
import type { KlingTask } from '../../shared/task/task';
import { BatchRun } from './batch';
import { CreateQueue, type CreateJob } from './createQueue';
import type { ItemOutcome, RunSettings, TaskJob } from './jobs';
import { TaskPoller, type PollRequest, type PollResult } from './poller';

/** The shortest wait between probes beyond the learned parallel-task limit. */
const MIN_PROBE_INTERVAL_MS = 5_000;

/** How often tasks created without waiting are checked while items wait for a slot. */
const SLOT_TRACKING_INTERVAL_MS = 5_000;

/**
 * Runs the jobs of one execution: creates go through the queue that keeps within the account's
 * parallel-task limit, every task is polled by one poller, and each is downloaded as it succeeds.
 * Without waiting, the run's tasks are polled only once the account's limit was reached (to know
 * when a slot frees), every few seconds, and no longer once every create is sent.
 */
export class TaskRunner {
	private readonly batch: BatchRun;

	private readonly outcomes = new Map<number, ItemOutcome | Promise<ItemOutcome>>();

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
		this.batch = new BatchRun(session, settings.failFast);
		const pollIntervalMs = settings.waitForCompletion ? settings.pollIntervalMs : SLOT_TRACKING_INTERVAL_MS;
		this.poller = new TaskPoller(this.ctx, this.batch.session, { ...settings, pollIntervalMs }, (request, result) =>
			this.settled(request, result),
		);
		this.queue = new CreateQueue(
			ctx,
			this.batch,
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
		this.batch.record(itemIndex, 'created', task.task_id);
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
			this.batch.record(job.itemIndex, 'waiting', job.taskId);
			// A task made earlier is polled at once.
			this.poller.add({ itemIndex: job.itemIndex, taskId: job.taskId, createdHere: false }, 0);
		}
		await this.queue.run(jobs.filter((job): job is CreateJob => job.kind === 'create'));
		if (this.settings.waitForCompletion) this.poller.close();
		else this.poller.abandon();
		await polling;
		const outcomes = await Promise.all(jobs.map(async (job) => await (this.outcomes.get(job.itemIndex) as ItemOutcome)));
		this.batch.throwIfFailedFast();
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
			return this.batch.failed(itemIndex, polled.error, taskId, polled.stillRunning ? 'may still finish' : 'failed');
		}
		const task = polled.task;
		if (task.status === 'failed') {
			return this.batch.failed(itemIndex, taskFailedError(this.ctx.getNode(), taskId, task.status_message, itemIndex), taskId);
		}
		this.batch.record(itemIndex, 'downloading', taskId);
		try {
			const items = await taskOutput(this.ctx, this.batch.session, task, itemIndex, this.settings.download);
			this.batch.record(itemIndex, 'done', taskId);
			return { itemIndex, items };
		} catch (error) {
			return this.batch.failed(itemIndex, asNodeError(this.ctx.getNode(), error, itemIndex), taskId);
		}
	}
}
