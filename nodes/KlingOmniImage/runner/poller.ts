import { queryTask } from '../../shared/api/client';
import type { NodeContext } from '../../shared/context';
import { asNodeError, type NodeError } from '../../shared/errors';
import { CometApiError } from '../../shared/errors/api';
import { stoppedWaitingError, waitTimeoutError } from '../../shared/errors/task';
import { pause } from '../../shared/request/pause';
import type { RequestSession } from '../../shared/request/session';
import { isTerminal, normalizeTask, type KlingTask } from '../../shared/task/task';

/** One item waiting for a task. Several items may wait for the same task. */
export interface PollRequest {
	itemIndex: number;
	taskId: string;
	/** Created by this run: the API may not show a brand-new task yet, so "not found" is not final. */
	createdHere: boolean;
}

/** `stillRunning`: the wait ended (stopped, or out of time) while the task may still finish. */
export type PollResult = { task: KlingTask } | { error: NodeError; stillRunning?: boolean };

interface PendingTask {
	waiters: PollRequest[];
	createdHere: boolean;
	lastError?: NodeError;
	lastStatus?: string;
}

export interface PollSettings {
	pollIntervalMs: number;
	maxWaitMs: number;
	/** The first round waits this long: tasks created a moment ago need time, given ones do not. */
	firstDelayMs: number;
}

/**
 * Polls every given task together, one round per interval, instead of one loop per item: a batch
 * of N tasks costs one task's wall time and one query per task per round.
 *
 * Contract: `pollAll` gets every request up front, calls `onSettled` exactly once for each, and
 * resolves when all are settled (a task reached a final status, failed for good, the wait ran out,
 * or the session's signal stopped the run).
 */
export class TaskPoller {
	private readonly pending = new Map<string, PendingTask>();

	constructor(
		private readonly ctx: NodeContext,
		private readonly session: RequestSession,
		private readonly settings: PollSettings,
		private readonly onSettled: (request: PollRequest, result: PollResult) => void,
	) {}

	async pollAll(requests: PollRequest[]): Promise<void> {
		for (const request of requests) this.add(request);
		// Settled at the moment of the stop, not when the queries in flight come back.
		const stop = () => this.stopAll();
		this.session.signal?.addEventListener('abort', stop, { once: true });
		try {
			await this.runRounds();
		} finally {
			this.session.signal?.removeEventListener('abort', stop);
		}
	}

	private stopAll(): void {
		this.settleAll((taskId, request) => stoppedWaitingError(this.ctx.getNode(), taskId, request.itemIndex));
	}

	private add(request: PollRequest): void {
		const entry = this.pending.get(request.taskId);
		if (entry) {
			entry.waiters.push(request);
			entry.createdHere ||= request.createdHere;
		} else {
			this.pending.set(request.taskId, { waiters: [request], createdHere: request.createdHere });
		}
	}

	private async runRounds(): Promise<void> {
		const deadline = Date.now() + this.settings.maxWaitMs;
		let delay = this.settings.firstDelayMs;
		while (this.pending.size > 0) {
			try {
				await pause(Math.min(delay, Math.max(0, deadline - Date.now())), this.session.signal);
			} catch {
				this.stopAll();
				return;
			}
			const roundStartedAt = Date.now();
			await this.pollRound();
			if (this.pending.size > 0 && Date.now() >= deadline) {
				this.settleAll((taskId, request, entry) =>
					waitTimeoutError(this.ctx.getNode(), taskId, request.itemIndex, this.settings.maxWaitMs, {
						status: entry.lastStatus,
						error: entry.lastError,
					}),
				);
				return;
			}
			// Rounds start one interval apart; a slow round (many tasks) does not push the next one back.
			delay = Math.max(0, roundStartedAt + this.settings.pollIntervalMs - Date.now());
		}
	}

	private settle(taskId: string, result: (request: PollRequest) => PollResult): void {
		const entry = this.pending.get(taskId);
		if (!entry) return;
		this.pending.delete(taskId);
		for (const request of entry.waiters) this.onSettled(request, result(request));
	}

	private settleAll(makeError: (taskId: string, request: PollRequest, entry: PendingTask) => NodeError): void {
		for (const [taskId, entry] of [...this.pending]) {
			this.settle(taskId, (request) => ({ error: makeError(taskId, request, entry), stillRunning: true }));
		}
	}

	private async pollRound(): Promise<void> {
		await Promise.all([...this.pending.entries()].map(async ([taskId, entry]) => await this.pollOne(taskId, entry)));
	}

	private async pollOne(taskId: string, entry: PendingTask): Promise<void> {
		const itemIndex = entry.waiters[0].itemIndex;
		try {
			const task = normalizeTask(await queryTask(this.ctx, this.session, itemIndex, taskId), taskId);
			entry.lastStatus = task.status;
			if (isTerminal(task)) this.settle(taskId, () => ({ task }));
		} catch (error) {
			// Retries are spent but the cause may pass (or a task just created is not visible yet, and
			// a paid task must not be given up on): keep it for the next round.
			const mayPass =
				error instanceof CometApiError && (error.transient || (entry.createdHere && error.taskNotFound));
			if (mayPass && !this.session.signal?.aborted) {
				entry.lastError = error;
				return;
			}
			this.settle(taskId, (request) => ({ error: asNodeError(this.ctx.getNode(), error, request.itemIndex) }));
		}
	}
}
