import type { IDataObject } from 'n8n-workflow';

/**
 * Once per task: which tasks a trigger has already emitted.
 *
 * Two records, because neither alone is enough in n8n 2.x:
 * - this process's memory, taken synchronously before the task is re-queried, so that concurrent
 *   callbacks for one task wait for each other instead of both starting the workflow;
 * - the workflow's static data, which n8n keeps in its database (across restarts and processes).
 *   n8n loads it when a callback arrives and writes the whole object back after the webhook
 *   method returns, so concurrent callbacks overwrite each other's additions (last writer wins).
 *   Each write therefore carries every mark this process holds, not only its own.
 */

/** Marks are kept this long: providers repeat and retry callbacks within minutes or hours. */
export const MARK_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
/** The newest this many marks are kept per trigger, so static data stays small. */
export const MAX_MARKS = 5000;

/** Where static data keeps the marks: task id → time emitted (ms). */
export const STATIC_DATA_KEY = 'emittedTasks';

/**
 * The newest emission time of a mark dropped to keep MAX_MARKS: a callback token issued before it
 * may be for a task whose mark is gone, so it is refused (see access.ts).
 */
export const DROPPED_THROUGH_KEY = 'marksDroppedThrough';

export function droppedThrough(staticData: IDataObject | undefined): number | undefined {
	const value = staticData?.[DROPPED_THROUGH_KEY];
	return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

type Entry = { state: 'checking'; settled: Promise<void> } | { state: 'emitted'; at: number };

export type Claim =
	| { kind: 'duplicate' }
	| {
			kind: 'claimed';
			/** The task was emitted: keep the mark. */
			confirm(): void;
			/** Nothing was emitted (unknown, unfinished, could not verify): forget the claim. */
			release(): void;
	  };

function marksIn(staticData: IDataObject | undefined): Record<string, number> {
	const value = staticData?.[STATIC_DATA_KEY];
	if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
	const marks: Record<string, number> = {};
	for (const [taskId, at] of Object.entries(value as IDataObject)) {
		if (typeof at === 'number' && Number.isFinite(at)) marks[taskId] = at;
	}
	return marks;
}

/** The newest marks within the retention time, at most MAX_MARKS of them. */
function prune(marks: Array<[string, number]>, now: number): Array<[string, number]> {
	return recent(marks, now).slice(0, MAX_MARKS);
}

function recent(marks: Array<[string, number]>, now: number): Array<[string, number]> {
	return marks.filter(([, at]) => now - at < MARK_RETENTION_MS).sort((a, b) => b[1] - a[1]);
}

/** The newest emission time among the marks within retention that MAX_MARKS leaves out. */
function newestDropped(marks: Array<[string, number]>, now: number): number | undefined {
	const dropped = recent(marks, now).slice(MAX_MARKS);
	return dropped.length ? dropped[0][1] : undefined;
}

/** One process's record of the tasks each trigger (workflow + node) has emitted. */
export class TaskLedger {
	private readonly scopes = new Map<string, Map<string, Entry>>();

	private readonly statuses = new Map<string, Map<string, number>>();

	constructor(private readonly now: () => number = Date.now) {}

	private scope(key: string): Map<string, Entry> {
		let entries = this.scopes.get(key);
		if (!entries) {
			entries = new Map();
			this.scopes.set(key, entries);
		}
		return entries;
	}

	/**
	 * Claims a task for checking. A task already emitted (here or in static data) is a duplicate; a
	 * task being checked by another callback is waited for, then looked at again.
	 */
	async claim(scopeKey: string, taskId: string, staticData?: IDataObject): Promise<Claim> {
		const entries = this.scope(scopeKey);
		for (;;) {
			if (marksIn(staticData)[taskId] !== undefined) return { kind: 'duplicate' };
			const entry = entries.get(taskId);
			if (entry?.state === 'emitted') return { kind: 'duplicate' };
			if (entry?.state === 'checking') {
				await entry.settled;
				continue;
			}
			// No await between the look and the claim: concurrent callbacks cannot both get here.
			let settle!: () => void;
			const settled = new Promise<void>((resolve) => (settle = resolve));
			const mine: Entry = { state: 'checking', settled };
			entries.set(taskId, mine);
			return {
				kind: 'claimed',
				confirm: () => {
					entries.set(taskId, { state: 'emitted', at: this.now() });
					this.trim(entries);
					settle();
				},
				release: () => {
					if (entries.get(taskId) === mine) entries.delete(taskId);
					settle();
				},
			};
		}
	}

	/**
	 * Unfinished statuses (when emitted at all) are marked in this process's memory only: true the
	 * first time a task is seen in `status`.
	 */
	markStatus(scopeKey: string, taskId: string, status: string): boolean {
		const key = `${taskId}#${status}`;
		let seen = this.statuses.get(scopeKey);
		if (!seen) {
			seen = new Map();
			this.statuses.set(scopeKey, seen);
		}
		if (seen.has(key)) return false;
		seen.set(key, this.now());
		if (seen.size > MAX_MARKS * 2) {
			const oldest = [...seen].sort((a, b) => a[1] - b[1]).slice(0, seen.size - MAX_MARKS);
			for (const [old] of oldest) seen.delete(old);
		}
		return true;
	}

	/** Whether the task is marked emitted in this process or in static data. */
	isEmitted(scopeKey: string, taskId: string, staticData?: IDataObject): boolean {
		return this.scope(scopeKey).get(taskId)?.state === 'emitted' || marksIn(staticData)[taskId] !== undefined;
	}

	/**
	 * Writes every emitted mark this process and the loaded static data know into static data, as a
	 * new object (so n8n sees the change and saves it); leaves static data untouched (and unsaved)
	 * when it already holds them all.
	 */
	persist(scopeKey: string, staticData: IDataObject): void {
		const loaded = marksIn(staticData);
		const merged = new Map<string, number>(Object.entries(loaded));
		for (const [taskId, entry] of this.scope(scopeKey)) {
			if (entry.state === 'emitted') merged.set(taskId, Math.max(entry.at, merged.get(taskId) ?? 0));
		}
		const kept = prune([...merged], this.now());
		const unchanged =
			kept.length === Object.keys(loaded).length && kept.every(([taskId, at]) => loaded[taskId] === at);
		if (unchanged) return;
		staticData[STATIC_DATA_KEY] = Object.fromEntries(kept);
		const dropped = newestDropped([...merged], this.now());
		const before = droppedThrough(staticData);
		if (dropped !== undefined && (before === undefined || dropped > before)) staticData[DROPPED_THROUGH_KEY] = dropped;
	}

	private trim(entries: Map<string, Entry>): void {
		if (entries.size <= MAX_MARKS * 1.2) return;
		const emitted = [...entries].filter(
			(pair): pair is [string, Extract<Entry, { state: 'emitted' }>] => pair[1].state === 'emitted',
		);
		const keep = new Set(prune(emitted.map(([id, e]) => [id, e.at]), this.now()).map(([id]) => id));
		for (const [id] of emitted) if (!keep.has(id)) entries.delete(id);
	}
}

/** The ledger of this n8n process: n8n keeps one instance of each node type per process. */
export const processLedger = new TaskLedger();
