import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';

import { isFinalStatus } from '../shared/task/task';

/**
 * Once per task across n8n processes. The trigger's own marks (ledger.ts) live in one process's
 * memory and in the workflow's static data, where marks written by n8n's webhook processes were
 * measured not to last; so behind several webhook processes a repeated callback can start a second
 * execution. The execution step then asks n8n's deduplication store (the database every process
 * shares, the one the Remove Duplicates node uses) whether the task was delivered before, and drops
 * it if so.
 */

/** Entries kept per trigger: far more than the tasks whose callbacks can still repeat. */
const MAX_DELIVERIES = 10_000;

/**
 * Deliveries claimed by executions in this process, taken before the store is asked: the store
 * reads, then writes, so two executions of one task asking at the same moment would both pass.
 */
const claimedHere = new Map<string, Set<string>>();

function claimInProcess(scope: string, key: string): boolean {
	let claimed = claimedHere.get(scope);
	if (!claimed) {
		claimed = new Set();
		claimedHere.set(scope, claimed);
	}
	if (claimed.has(key)) return false;
	claimed.add(key);
	if (claimed.size > MAX_DELIVERIES) claimed.delete(claimed.values().next().value as string);
	return true;
}

/** What one delivery is: the task, or the task in one unfinished status (Emit Unfinished Statuses). */
function deliveryKey(json: INodeExecutionData['json']): string | undefined {
	const taskId = typeof json.task_id === 'string' ? json.task_id : undefined;
	const status = typeof json.status === 'string' ? json.status : '';
	if (!taskId) return undefined;
	return isFinalStatus(status) ? taskId : `${taskId}#${status}`;
}

/**
 * The items whose task was not delivered by an earlier execution. Test runs (manual mode) are
 * neither checked nor recorded, so they cannot hide a task from the published workflow.
 */
export async function undelivered(ctx: IExecuteFunctions, items: INodeExecutionData[]): Promise<INodeExecutionData[]> {
	if (ctx.getMode() === 'manual') return items;
	const scope = `${String(ctx.getWorkflow().id ?? '')}:${ctx.getNode().id}`;
	const keys = items.map((item) => deliveryKey(item.json));
	// Synchronously, before anything is awaited: a concurrent execution in this process sees the claim.
	const claimed = keys.map((key) => key === undefined || claimInProcess(scope, key));
	const toCheck = keys.filter((key, index): key is string => key !== undefined && claimed[index]);
	let fresh = new Set(toCheck);
	if (toCheck.length > 0) {
		try {
			const result = await ctx.helpers.checkProcessedAndRecord(toCheck, 'node', { mode: 'entries', maxEntries: MAX_DELIVERIES });
			fresh = new Set(result.new.map(String));
		} catch (error) {
			// No store (an n8n without one): deliver, as the trigger's own marks already allowed.
			ctx.logger.warn(`Kling trigger: could not check earlier deliveries: ${(error as Error).message}`);
		}
	}
	return items.filter((item, index) => {
		const key = keys[index];
		if (key === undefined || (claimed[index] && fresh.has(key))) return true;
		ctx.logger.info(`Kling trigger: task ${String(item.json.task_id)} was delivered by an earlier execution; this repeat is dropped`);
		return false;
	});
}
