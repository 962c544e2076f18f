import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';

import { isFinalStatus } from '../shared/task/task';

/**
 * Once per task across n8n processes. The trigger's own marks (ledger.ts) live in one process's
 * memory and in the workflow's static data, which n8n's webhook processes were measured not to
 * save; so behind several webhook processes a repeated callback can start a second execution.
 * The execution step then asks n8n's deduplication store (the database every process shares, the
 * one the Remove Duplicates node uses) whether the task was delivered before, and drops it if so.
 */

/** Entries kept per trigger: far more than the tasks whose callbacks can still repeat. */
const MAX_DELIVERIES = 10_000;

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
	const keys = items.map((item) => deliveryKey(item.json));
	const known = keys.filter((key): key is string => key !== undefined);
	if (known.length === 0) return items;
	let fresh: Set<string>;
	try {
		const result = await ctx.helpers.checkProcessedAndRecord(known, 'node', { mode: 'entries', maxEntries: MAX_DELIVERIES });
		fresh = new Set(result.new.map(String));
	} catch (error) {
		// No store (an n8n without one): deliver, as the trigger's own marks already allowed.
		ctx.logger.warn(`Kling trigger: could not check earlier deliveries: ${(error as Error).message}`);
		return items;
	}
	return items.filter((item, index) => {
		const key = keys[index];
		if (key === undefined || fresh.has(key)) return true;
		ctx.logger.info(`Kling trigger: task ${String(item.json.task_id)} was delivered by an earlier execution; this repeat is dropped`);
		return false;
	});
}
