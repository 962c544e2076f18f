import type { IDataObject } from 'n8n-workflow';

import { createTask } from '../../shared/api/client';
import type { NodeContext } from '../../shared/nodeContext';
import { taskSlots } from '../../shared/contract';
import { asNodeError } from '../../shared/errors';
import { CometApiError } from '../../shared/errors/api';
import { neverCreatedError } from '../../shared/errors/run';
import { missingTaskIdError } from '../../shared/errors/task';
import { normalizeTask, type KlingTask } from '../../shared/task/task';
import type { RunProgress } from './runProgress';
import type { ItemFailure, TaskJob } from './jobTypes';
import { SlotLimit } from './slots';
import { Wakeup } from './wakeup';

export type CreateJob = Extract<TaskJob, { kind: 'create' }>;

const MIN_SLEEP_MS = 10;

export interface CreateQueueSettings {
	/** Creates awaiting an answer at once: also bounds the 1303s of a first burst. */
	maxConcurrentCreates: number;
	/** How often to try beyond the learned limit. */
	probeIntervalMs: number;
	/** A queued item gives up when no create of the run was accepted for this long. */
	maxWaitMs: number;
}

export interface CreateEvents {
	created(job: CreateJob, task: KlingTask, slots: number): void;
	/** The create failed for good (recorded in the batch), or was never sent. */
	failed(job: CreateJob, failure: ItemFailure): void;
	/** A create was refused for the account's parallel-task limit. */
	limitReached?(): void;
}

/**
 * Sends the run's creates within the account's parallel-task limit. A create refused with 1303 is
 * proof that nothing was created, so it goes back to the front of the queue and is sent again when
 * one of the run's tasks ends (`release`) or at the next probe. Every other create rule is the API
 * client's: anything that may have created a task is never sent again.
 */
export class CreateQueue {
	private readonly waiting: CreateJob[] = [];

	private readonly slots: SlotLimit;

	private readonly wakeup = new Wakeup();

	private inFlight = 0;

	private lastProgressAt = Date.now();

	constructor(
		private readonly ctx: NodeContext,
		private readonly progress: RunProgress,
		private readonly settings: CreateQueueSettings,
		private readonly events: CreateEvents,
	) {
		this.slots = new SlotLimit(settings.probeIntervalMs);
	}

	/** Whether the account's parallel-task limit has refused a create of this run. */
	get limitReached(): boolean {
		return this.slots.knownLimit !== undefined;
	}

	/** One of the run's tasks reached a final status: its slots are free again. */
	release(slots: number): void {
		this.slots.released(slots);
		this.wakeup.notify();
	}

	/** Resolves when every job was created or failed (or the run stopped, failing what was never sent). */
	async run(jobs: CreateJob[]): Promise<void> {
		this.waiting.push(...jobs);
		const sending: Array<Promise<void>> = [];
		while (this.waiting.length > 0 || this.inFlight > 0) {
			if (this.progress.session.signal?.aborted) {
				this.failWaiting('the run was stopped');
				break;
			}
			if (this.waiting.length > 0 && Date.now() - this.lastProgressAt >= this.settings.maxWaitMs) {
				this.failWaiting(`no slot freed up in ${Math.round(this.settings.maxWaitMs / 1000)} s`);
				continue;
			}
			sending.push(...this.dispatch());
			await this.wakeup.sleep(this.nextWakeInMs(), this.progress.session.signal);
		}
		await Promise.all(sending);
	}

	/** Sends what the limit allows now; each send wakes the loop when answered. */
	private dispatch(): Array<Promise<void>> {
		const sends: Array<Promise<void>> = [];
		while (this.waiting.length > 0 && this.inFlight < this.settings.maxConcurrentCreates) {
			const job = this.waiting[0];
			const slots = taskSlots(job.body as IDataObject);
			const admission = this.slots.admit(slots);
			if (admission === 'wait') break;
			this.waiting.shift();
			this.slots.sent(slots);
			this.inFlight++;
			sends.push(this.send(job, slots));
			if (admission === 'probe') break;
		}
		return sends;
	}

	/** Until the next probe or give-up; answers and freed slots wake the queue earlier. */
	private nextWakeInMs(): number {
		if (this.waiting.length === 0 || this.inFlight >= this.settings.maxConcurrentCreates) {
			return Number.POSITIVE_INFINITY;
		}
		const giveUpIn = this.lastProgressAt + this.settings.maxWaitMs - Date.now();
		// Never 0: the loop must not spin without giving timers and sockets their turn.
		return Math.max(MIN_SLEEP_MS, Math.min(this.slots.nextProbeInMs(), giveUpIn));
	}

	private async send(job: CreateJob, slots: number): Promise<void> {
		try {
			const task = normalizeTask(await createTask(this.ctx, this.progress.session, job.itemIndex, job.body, job.externalTaskId));
			if (!task.task_id) {
				this.slots.abandoned(slots);
				const error = missingTaskIdError(this.ctx.getNode(), job.itemIndex, job.externalTaskId);
				this.events.failed(job, this.progress.failed(job.itemIndex, error));
				return;
			}
			this.slots.accepted(slots);
			this.lastProgressAt = Date.now();
			this.events.created(job, task, slots);
		} catch (error) {
			// Even when the run has stopped meanwhile: back in the queue, the item is reported as never sent.
			if (error instanceof CometApiError && error.parallelLimit) {
				this.slots.rejected(slots);
				this.requeue(job);
				this.events.limitReached?.();
				return;
			}
			this.slots.abandoned(slots);
			const nodeError = asNodeError(this.ctx.getNode(), error, job.itemIndex);
			const failure =
				error instanceof CometApiError && error.mayExist
					? this.progress.mayExist(job.itemIndex, nodeError, job.externalTaskId)
					: this.progress.failed(job.itemIndex, nodeError);
			this.events.failed(job, failure);
		} finally {
			this.inFlight--;
			this.wakeup.notify();
		}
	}

	/** Back into the queue in input order, so items are created (or given up) first come, first served. */
	private requeue(job: CreateJob): void {
		const position = this.waiting.findIndex((queued) => queued.itemIndex > job.itemIndex);
		this.waiting.splice(position === -1 ? this.waiting.length : position, 0, job);
	}

	private failWaiting(reason: string): void {
		for (const job of this.waiting.splice(0)) {
			const error = neverCreatedError(this.ctx.getNode(), job.itemIndex, reason);
			this.events.failed(job, this.progress.failed(job.itemIndex, error, undefined, 'never sent'));
		}
	}
}
