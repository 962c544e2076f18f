import type { IDataObject, IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { CometApiError, createTask, queryTask, type RequestSession } from '../transport';
import { asNodeError, type NodeError } from './errors';
import { downloadTaskImages, type DownloadSettings } from './download';
import { imageItems, taskItem, type OutputSettings } from './output';
import { pause } from './sleep';
import { isTerminal, normalizeTask, type KlingTask } from './task';

/** What one input item asks for: a new task from a create body, or an existing task id. */
export interface TaskJob {
	itemIndex: number;
	create?: { body: IDataObject; externalTaskId?: string };
	taskId?: string;
}

export interface RunSettings {
	waitForCompletion: boolean;
	pollIntervalMs: number;
	maxWaitMs: number;
	download: DownloadSettings & OutputSettings;
	/** Without "Continue On Fail" the first failure ends the run (other items stop being polled). */
	failFast: boolean;
}

export type { NodeError };

export type ItemOutcome =
	| { itemIndex: number; items: INodeExecutionData[] }
	| { itemIndex: number; error: NodeError; taskId?: string };

/** Where one job got to, for honest reporting when the run stops early. */
interface JobProgress {
	itemIndex: number;
	taskId?: string;
	state: string;
}

/** `stillRunning`: the wait ended (stopped, or out of time) while the task may still finish. */
type PollResult = { task: KlingTask } | { error: NodeError; stillRunning?: boolean };

interface PendingTask {
	itemIndex: number;
	/** Created by this run: the API may not show a brand-new task yet, so "not found" is not final. */
	createdHere: boolean;
	resolve: (result: PollResult) => void;
	lastError?: NodeError;
	lastStatus?: string;
}

/**
 * Polls every pending task together, one round per interval, instead of one loop per item: a batch
 * of N tasks costs one task's wall time and one query per task per round.
 */
class TaskPoller {
	private readonly pending = new Map<string, PendingTask>();

	constructor(
		private readonly ctx: IExecuteFunctions,
		private readonly session: RequestSession,
		private readonly settings: RunSettings,
	) {}

	async waitFor(taskId: string, itemIndex: number, createdHere: boolean): Promise<PollResult> {
		return await new Promise<PollResult>((resolve) => {
			this.pending.set(taskId, { itemIndex, createdHere, resolve });
		});
	}

	/** Runs rounds until no task is pending; `firstDelayMs` 0 polls at once (tasks made earlier). */
	async run(firstDelayMs: number): Promise<void> {
		const deadline = Date.now() + this.settings.maxWaitMs;
		let delay = firstDelayMs;
		while (this.pending.size > 0) {
			try {
				await pause(Math.min(delay, Math.max(0, deadline - Date.now())), this.session.signal);
			} catch {
				this.settleAll((taskId, itemIndex) => stoppedError(this.ctx, taskId, itemIndex));
				return;
			}
			const roundStartedAt = Date.now();
			await this.pollRound();
			if (this.pending.size > 0 && Date.now() >= deadline) {
				this.settleAll((taskId, itemIndex, entry) =>
					timeoutError(this.ctx, taskId, itemIndex, this.settings.maxWaitMs, entry),
				);
				return;
			}
			// Rounds start one interval apart; a slow round (many tasks) does not push the next one back.
			delay = Math.max(0, roundStartedAt + this.settings.pollIntervalMs - Date.now());
		}
	}

	/** Ends every pending wait, e.g. when the run is stopped. */
	stop(): void {
		this.settleAll((taskId, itemIndex) => stoppedError(this.ctx, taskId, itemIndex));
	}

	private settleAll(
		makeError: (taskId: string, itemIndex: number, entry: PendingTask) => NodeError,
	): void {
		for (const [taskId, entry] of this.pending) {
			entry.resolve({ error: makeError(taskId, entry.itemIndex, entry), stillRunning: true });
		}
		this.pending.clear();
	}

	private async pollRound(): Promise<void> {
		await Promise.all(
			[...this.pending.entries()].map(async ([taskId, entry]) => {
				try {
					const task = normalizeTask(
						await queryTask.call(this.ctx, this.session, entry.itemIndex, taskId),
						taskId,
					);
					entry.lastStatus = task.status;
					if (!isTerminal(task) || !this.pending.has(taskId)) return;
					this.pending.delete(taskId);
					entry.resolve({ task });
				} catch (error) {
					if (!this.pending.has(taskId)) return;
					// Retries are spent but the cause may pass (or a task just created is not visible
					// yet, and a paid task must not be given up on): keep it for the next round.
					const mayPass =
						error instanceof CometApiError && (error.transient || (entry.createdHere && error.taskNotFound));
					if (mayPass && !this.session.signal?.aborted) {
						entry.lastError = error;
						return;
					}
					this.pending.delete(taskId);
					entry.resolve({ error: asNodeError(this.ctx, error, entry.itemIndex) });
				}
			}),
		);
	}
}

function stoppedError(ctx: IExecuteFunctions, taskId: string, itemIndex: number): NodeOperationError {
	return new NodeOperationError(ctx.getNode(), `Stopped waiting for task ${taskId} [item ${itemIndex}]`, {
		itemIndex,
		description: `The task was not cancelled at CometAPI. Pick it up later with "Wait for Completion" and task ID ${taskId}.`,
	});
}

function timeoutError(
	ctx: IExecuteFunctions,
	taskId: string,
	itemIndex: number,
	maxWaitMs: number,
	entry: Pick<PendingTask, 'lastError' | 'lastStatus'>,
): NodeOperationError {
	const state = entry.lastStatus ? `still "${entry.lastStatus}"` : 'not finished';
	const lastError = entry.lastError ? ` The last query failed: ${entry.lastError.message}.` : '';
	return new NodeOperationError(
		ctx.getNode(),
		`Task ${taskId} is ${state} after waiting ${Math.round(maxWaitMs / 1000)} s [item ${itemIndex}]`,
		{
			itemIndex,
			description: `The task was not created again and may still finish.${lastError} Pick it up later with "Wait for Completion" (or "Get Task") and task ID ${taskId}, or raise "Max Wait Time".`,
		},
	);
}

function taskFailedError(ctx: IExecuteFunctions, task: KlingTask, itemIndex: number): NodeOperationError {
	return new NodeOperationError(
		ctx.getNode(),
		`Kling task ${task.task_id} failed: ${task.status_message ?? 'CometAPI gave no reason'} [item ${itemIndex}]`,
		{ itemIndex, description: 'The provider rejected or could not finish the task. Adjust the prompt or reference images and try again.' },
	);
}

function missingTaskIdError(ctx: IExecuteFunctions, itemIndex: number, externalTaskId?: string): NodeOperationError {
	const lookup = externalTaskId ? ` Look for external task ID "${externalTaskId}" in your CometAPI task log.` : '';
	return new NodeOperationError(
		ctx.getNode(),
		`CometAPI accepted the create request but sent no task ID: the task may have been created and charged [item ${itemIndex}]`,
		{ itemIndex, description: `It was not sent again, so that nothing is paid for twice.${lookup}` },
	);
}

/** Runs the jobs of one execution: create all, poll all together, download each as it succeeds. */
export class TaskRunner {
	private readonly stopController = new AbortController();

	private readonly session: RequestSession;

	private readonly progress = new Map<number, JobProgress>();

	private firstFailure?: { itemIndex: number; error: NodeError };

	constructor(
		private readonly ctx: IExecuteFunctions,
		session: RequestSession,
		private readonly settings: RunSettings,
	) {
		const signals = [this.stopController.signal];
		if (session.signal) signals.push(session.signal);
		this.session = { ...session, signal: AbortSignal.any(signals) };
	}

	async run(jobs: TaskJob[]): Promise<ItemOutcome[]> {
		const started = await Promise.all(jobs.map(async (job) => await this.start(job)));
		this.throwIfFailedFast();
		if (!this.settings.waitForCompletion) {
			return started.map((outcome) => outcome.result);
		}
		const poller = new TaskPoller(this.ctx, this.session, this.settings);
		this.stopController.signal.addEventListener('abort', () => poller.stop(), { once: true });
		const finished = started.map(async ({ result, taskId, created }) =>
			'error' in result || !taskId ? result : await this.finish(poller, taskId, result.itemIndex, created),
		);
		// Tasks created here need time before the first poll; given task ids are polled at once.
		const anyCreated = started.some((outcome) => outcome.created);
		await poller.run(anyCreated ? this.settings.pollIntervalMs : 0);
		const outcomes = await Promise.all(finished);
		this.throwIfFailedFast();
		return outcomes;
	}

	private record(itemIndex: number, state: string, taskId?: string): void {
		this.progress.set(itemIndex, { itemIndex, taskId, state });
	}

	private failed(itemIndex: number, error: NodeError, taskId?: string, state = 'failed'): ItemOutcome {
		this.record(itemIndex, state, taskId);
		if (this.settings.failFast && !this.firstFailure) {
			this.firstFailure = { itemIndex, error };
			this.stopController.abort();
		}
		return { itemIndex, error, taskId };
	}

	private async start(job: TaskJob): Promise<{ result: ItemOutcome; taskId?: string; created: boolean }> {
		if (!job.create) {
			this.record(job.itemIndex, 'waiting', job.taskId);
			return { result: { itemIndex: job.itemIndex, items: [] }, taskId: job.taskId, created: false };
		}
		try {
			const data = await createTask.call(
				this.ctx,
				this.session,
				job.itemIndex,
				job.create.body,
				job.create.externalTaskId,
			);
			const task = normalizeTask(data);
			if (!task.task_id) {
				const error = missingTaskIdError(this.ctx, job.itemIndex, job.create.externalTaskId);
				return { result: this.failed(job.itemIndex, error), created: false };
			}
			this.record(job.itemIndex, task.status, task.task_id);
			return { result: { itemIndex: job.itemIndex, items: [taskItem(task, job.itemIndex)] }, taskId: task.task_id, created: true };
		} catch (error) {
			return { result: this.failed(job.itemIndex, asNodeError(this.ctx, error, job.itemIndex)), created: false };
		}
	}

	private async finish(poller: TaskPoller, taskId: string, itemIndex: number, created: boolean): Promise<ItemOutcome> {
		const polled = await poller.waitFor(taskId, itemIndex, created);
		if ('error' in polled) {
			return this.failed(itemIndex, polled.error, taskId, polled.stillRunning ? 'may still finish' : 'failed');
		}
		const task = polled.task;
		this.record(itemIndex, task.status, taskId);
		if (task.status === 'failed') return this.failed(itemIndex, taskFailedError(this.ctx, task, itemIndex), taskId);
		try {
			const downloads = await downloadTaskImages(this.ctx, this.session, task, itemIndex, this.settings.download);
			this.record(itemIndex, 'succeeded', taskId);
			return { itemIndex, items: imageItems(task, downloads, itemIndex, this.settings.download) };
		} catch (error) {
			return this.failed(itemIndex, asNodeError(this.ctx, error, itemIndex), taskId);
		}
	}

	/** Throws the first failure, with what happened to the other items' tasks (they may be paid for). */
	private throwIfFailedFast(): void {
		if (!this.firstFailure) return;
		const { itemIndex, error } = this.firstFailure;
		const others = [...this.progress.values()]
			.filter((entry) => entry.itemIndex !== itemIndex && entry.taskId)
			.sort((a, b) => a.itemIndex - b.itemIndex)
			.map((entry) => `item ${entry.itemIndex}: task ${entry.taskId} (${entry.state})`);
		if (others.length > 0) {
			const summary = `The run stopped at this error. Tasks already created for other items (get them with "Get Task" or "Wait for Completion"): ${others.join('; ')}.`;
			error.description = error.description ? `${error.description} ${summary}` : summary;
		}
		throw error;
	}
}
