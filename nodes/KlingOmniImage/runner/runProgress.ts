import type { NodeError } from '../../shared/errors';
import { mayExistSummary, neverSentSummary } from '../../shared/errors/run';
import { otherTasksSummary } from '../../shared/errors/task';
import { withStopSignal, type RequestSession } from '../../shared/request/session';
import type { ItemFailure } from './jobTypes';

/** Where an item's task got to, in the runner's words (the API's own statuses stay in the task JSON). */
export type JobState = 'never sent' | 'may exist' | 'created' | 'waiting' | 'downloading' | 'done' | 'failed' | 'may still finish';

/**
 * One run of the node over its items: what each item's task got to, and the stop at the first
 * failure. Without "Continue On Fail" the first failure aborts the run's session (every request of
 * the run shares its stop signal) and is thrown with the other items' tasks listed, since those may
 * be paid for.
 */
export class RunProgress {
	/** The run's request session, stopped with the run. */
	readonly session: RequestSession;

	private readonly stopController = new AbortController();

	private readonly states = new Map<number, { taskId?: string; state: JobState; externalTaskId?: string }>();

	private firstFailure?: { itemIndex: number; error: NodeError };

	constructor(
		session: RequestSession,
		private readonly failFast: boolean,
	) {
		this.session = withStopSignal(session, this.stopController.signal);
	}

	/** Aborts when the run stops itself at its first failure. */
	get stopSignal(): AbortSignal {
		return this.stopController.signal;
	}

	record(itemIndex: number, state: JobState, taskId?: string): void {
		this.states.set(itemIndex, { taskId, state });
	}

	/** A create got no usable answer: it may have made a task, known only by its external task ID. */
	mayExist(itemIndex: number, error: NodeError, externalTaskId?: string): ItemFailure {
		const failure = this.failed(itemIndex, error, undefined, 'may exist');
		this.states.set(itemIndex, { state: 'may exist', externalTaskId });
		return failure;
	}

	failed(itemIndex: number, error: NodeError, taskId?: string, state: JobState = 'failed'): ItemFailure {
		this.record(itemIndex, state, taskId);
		if (this.failFast && !this.firstFailure) {
			this.firstFailure = { itemIndex, error };
			this.stopController.abort();
		}
		return { itemIndex, error, taskId };
	}

	/** Throws the first failure, with what happened to the other items' tasks. */
	throwIfFailedFast(): void {
		if (!this.firstFailure) return;
		const { itemIndex, error } = this.firstFailure;
		const others = [...this.states.entries()].filter(([index]) => index !== itemIndex).sort(([a], [b]) => a - b);
		const created = others.flatMap(([index, { taskId, state }]) => (taskId ? [{ itemIndex: index, taskId, state }] : []));
		const neverSent = others.filter(([, entry]) => entry.state === 'never sent').map(([index]) => index);
		const mayExist = others
			.filter(([, entry]) => entry.state === 'may exist')
			.map(([index, entry]) => ({ itemIndex: index, externalTaskId: entry.externalTaskId }));
		const summaries = [
			...(created.length > 0 ? [otherTasksSummary(created)] : []),
			...(mayExist.length > 0 ? [mayExistSummary(mayExist)] : []),
			...(neverSent.length > 0 ? [neverSentSummary(neverSent)] : []),
		];
		if (summaries.length > 0) {
			error.description = [error.description, ...summaries].filter(Boolean).join(' ');
		}
		throw error;
	}
}

