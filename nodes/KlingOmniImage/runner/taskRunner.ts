import { createTask } from '../../shared/api/client';
import type { NodeContext } from '../../shared/context';
import { asNodeError } from '../../shared/errors';
import { missingTaskIdError, taskFailedError } from '../../shared/errors/task';
import { downloadTaskImages } from '../../shared/images/download';
import type { RequestSession } from '../../shared/request/session';
import { imageItems, taskItem } from '../../shared/task/output';
import { normalizeTask, type KlingTask } from '../../shared/task/task';
import { BatchRun } from './batch';
import type { ItemFailure, ItemOutcome, RunSettings, TaskJob } from './jobs';
import { TaskPoller, type PollRequest, type PollResult } from './poller';

/** A job after its start: a task to wait for (and the task as created, for create jobs), or the item's failure. */
type Started = { itemIndex: number; request: PollRequest; created?: KlingTask } | { itemIndex: number; failure: ItemFailure };

/** Runs the jobs of one execution: create all, poll all together, download each as it succeeds. */
export class TaskRunner {
	private readonly batch: BatchRun;

	constructor(
		private readonly ctx: NodeContext,
		session: RequestSession,
		private readonly settings: RunSettings,
	) {
		this.batch = new BatchRun(session, settings.failFast);
	}

	async run(jobs: TaskJob[]): Promise<ItemOutcome[]> {
		const started = await Promise.all(jobs.map(async (job) => await this.start(job)));
		this.batch.throwIfFailedFast();
		if (!this.settings.waitForCompletion) {
			// Only Create runs without waiting, so every started job has its created task.
			return started.map((entry) =>
				'failure' in entry ? entry.failure : { itemIndex: entry.itemIndex, items: [taskItem(entry.created as KlingTask, entry.itemIndex)] },
			);
		}
		const finishing = new Map<number, Promise<ItemOutcome>>();
		const waiting = started.flatMap((entry) => ('request' in entry ? [entry.request] : []));
		const poller = new TaskPoller(
			this.ctx,
			this.batch.session,
			{
				...this.settings,
				// Tasks created here need time before the first poll; given task ids are polled at once.
				firstDelayMs: waiting.some((request) => request.createdHere) ? this.settings.pollIntervalMs : 0,
			},
			(request, result) => finishing.set(request.itemIndex, this.finish(request, result)),
		);
		await poller.pollAll(waiting);
		const outcomes = await Promise.all(
			// pollAll has settled every request, so each waiting item has its finishing promise.
			started.map(async (entry) => ('failure' in entry ? entry.failure : await (finishing.get(entry.itemIndex) as Promise<ItemOutcome>))),
		);
		this.batch.throwIfFailedFast();
		return outcomes;
	}

	private async start(job: TaskJob): Promise<Started> {
		const { itemIndex } = job;
		if (job.kind === 'existing') {
			this.batch.record(itemIndex, 'waiting', job.taskId);
			return { itemIndex, request: { itemIndex, taskId: job.taskId, createdHere: false } };
		}
		try {
			const task = normalizeTask(await createTask(this.ctx, this.batch.session, itemIndex, job.body, job.externalTaskId));
			if (!task.task_id) {
				const error = missingTaskIdError(this.ctx.getNode(), itemIndex, job.externalTaskId);
				return { itemIndex, failure: this.batch.failed(itemIndex, error) };
			}
			this.batch.record(itemIndex, 'created', task.task_id);
			return { itemIndex, request: { itemIndex, taskId: task.task_id, createdHere: true }, created: task };
		} catch (error) {
			return { itemIndex, failure: this.batch.failed(itemIndex, asNodeError(this.ctx.getNode(), error, itemIndex)) };
		}
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
			const downloads = await downloadTaskImages(this.ctx, this.batch.session, task, itemIndex, this.settings.download);
			this.batch.record(itemIndex, 'done', taskId);
			return { itemIndex, items: imageItems(task, downloads, itemIndex, this.settings.download) };
		} catch (error) {
			return this.batch.failed(itemIndex, asNodeError(this.ctx.getNode(), error, itemIndex), taskId);
		}
	}
}
