import { queryTask } from '../../shared/api/client';
import type { NodeContext } from '../../shared/nodeContext';
import { asNodeError, type NodeError } from '../../shared/errors';
import { CometApiError } from '../../shared/errors/api';
import { stoppedWaitingError, unknownStatusError, waitTimeoutError } from '../../shared/errors/task';
import { withDeadline, type RequestSession } from '../../shared/request/session';
import { hasUnknownStatus, isTerminal, normalizeTask, type KlingTask } from '../../shared/task/task';
import { Wakeup } from './wakeup';

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
	nextPollAt: number;
	/** Max Wait Time counts for each task from when the run started waiting for it. */
	deadline: number;
	lastError?: NodeError;
	lastStatus?: string;
	/** Answers in a row with a status outside the contract: one may be a glitch, two are not. */
	unknownAnswers: number;
}

/** After this many answers in a row with an unknown status the task fails instead of being polled on. */
const MAX_UNKNOWN_ANSWERS = 2;

export interface PollSettings {
	pollIntervalMs: number;
	maxWaitMs: number;
}

/**
 * Polls the run's tasks, each one interval after it was added and then every interval, all tasks
 * due at the same time in one round: a batch of N tasks costs one task's wall time and one query
 * per task per interval, and a task created late in a queued batch is not polled early.
 *
 * Contract: `add` may be called at any time until `close`; `onSettled` is called exactly once for
 * each added request (a final status, a failure for good, Max Wait Time, or the run's stop); `run`
 * resolves once `close` was called and every request is settled. `abandon` ends `run` at once and
 * settles nothing more (the caller no longer needs the answers).
 */
export class TaskPoller {
	private readonly pending = new Map<string, PendingTask>();

	private readonly wakeup = new Wakeup();

	private closed = false;

	private abandoned = false;

	constructor(
		private readonly ctx: NodeContext,
		private readonly session: RequestSession,
		private readonly settings: PollSettings,
		private readonly onSettled: (request: PollRequest, result: PollResult) => void,
	) {}

	/** `firstPollInMs` 0 polls at once (a task made earlier), otherwise one interval from now. */
	add(request: PollRequest, firstPollInMs = this.settings.pollIntervalMs): void {
		if (this.session.signal?.aborted) {
			this.onSettled(request, { error: this.stoppedError(request), stillRunning: true });
			return;
		}
		const now = Date.now();
		const entry = this.pending.get(request.taskId);
		if (entry) {
			entry.waiters.push(request);
			entry.createdHere ||= request.createdHere;
		} else {
			this.pending.set(request.taskId, {
				waiters: [request],
				createdHere: request.createdHere,
				nextPollAt: now + firstPollInMs,
				deadline: now + this.settings.maxWaitMs,
				unknownAnswers: 0,
			});
		}
		this.wakeup.notify();
	}

	close(): void {
		this.closed = true;
		this.wakeup.notify();
	}

	abandon(): void {
		this.abandoned = true;
		this.pending.clear();
		this.close();
	}

	async run(): Promise<void> {
		// Settled at the moment of the stop, not when the queries in flight come back.
		const stop = () => this.stopAll();
		this.session.signal?.addEventListener('abort', stop, { once: true });
		try {
			while (!this.abandoned && !(this.closed && this.pending.size === 0)) {
				if (this.session.signal?.aborted) {
					// Stopped: what is added from now on settles at once; wait for close() without spinning.
					this.stopAll();
					await this.wakeup.sleep(Number.POSITIVE_INFINITY);
					continue;
				}
				const due = this.dueTasks();
				if (due.length > 0) await this.pollRound(due);
				else await this.wakeup.sleep(this.nextDueInMs(), this.session.signal);
			}
		} finally {
			this.session.signal?.removeEventListener('abort', stop);
		}
	}

	private stoppedError(request: PollRequest): NodeError {
		return stoppedWaitingError(this.ctx.getNode(), request.taskId, request.itemIndex);
	}

	private stopAll(): void {
		for (const taskId of [...this.pending.keys()]) {
			this.settle(taskId, (request) => ({ error: this.stoppedError(request), stillRunning: true }));
		}
	}

	private dueTasks(): string[] {
		const now = Date.now();
		return [...this.pending.entries()].filter(([, entry]) => entry.nextPollAt <= now).map(([taskId]) => taskId);
	}

	private nextDueInMs(): number {
		let next = Number.POSITIVE_INFINITY;
		for (const entry of this.pending.values()) next = Math.min(next, entry.nextPollAt);
		return next - Date.now();
	}

	private settle(taskId: string, result: (request: PollRequest) => PollResult): void {
		const entry = this.pending.get(taskId);
		if (!entry) return;
		this.pending.delete(taskId);
		for (const request of entry.waiters) this.onSettled(request, result(request));
	}

	private async pollRound(taskIds: string[]): Promise<void> {
		await Promise.all(taskIds.map(async (taskId) => await this.pollOne(taskId)));
		const now = Date.now();
		for (const taskId of taskIds) {
			const entry = this.pending.get(taskId);
			if (!entry) continue;
			if (now >= entry.deadline) {
				this.settle(taskId, (request) => ({ error: this.timeoutError(request, entry), stillRunning: true }));
				continue;
			}
			// On a fixed schedule (a slow round does not push the next one back), never past the deadline.
			entry.nextPollAt = Math.min(Math.max(now, entry.nextPollAt + this.settings.pollIntervalMs), entry.deadline);
		}
	}

	private timeoutError(request: PollRequest, entry: PendingTask): NodeError {
		return waitTimeoutError(this.ctx.getNode(), request.taskId, request.itemIndex, this.settings.maxWaitMs, {
			status: entry.lastStatus,
			error: entry.lastError,
		});
	}

	private async pollOne(taskId: string): Promise<void> {
		const entry = this.pending.get(taskId);
		if (!entry) return;
		const itemIndex = entry.waiters[0].itemIndex;
		try {
			// Query retries end at this task's own deadline: a long Retry-After must not outlast Max Wait Time.
			const session = withDeadline(this.session, entry.deadline);
			const task = normalizeTask(await queryTask(this.ctx, session, itemIndex, taskId), taskId);
			entry.lastStatus = task.status;
			entry.unknownAnswers = hasUnknownStatus(task) ? entry.unknownAnswers + 1 : 0;
			if (isTerminal(task)) this.settle(taskId, () => ({ task }));
			else if (entry.unknownAnswers >= MAX_UNKNOWN_ANSWERS) {
				const node = this.ctx.getNode();
				this.settle(taskId, (request) => ({ error: unknownStatusError(node, taskId, task.status, request.itemIndex) }));
			}
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
