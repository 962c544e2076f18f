/**
 * n8n's deduplication store (the `processed_data` table a real n8n keeps for Remove Duplicates and
 * `helpers.checkProcessedAndRecord`), held in this test process's memory: one list of entries per
 * workflow and node, shared by every harness trigger of that workflow as the database would be.
 */
import { DataDeduplicationService } from 'n8n-core';
import type {
	DeduplicationItemTypes,
	DeduplicationScope,
	ICheckProcessedContextData,
	ICheckProcessedOptions,
	IDataDeduplicator,
	IDeduplicationOutput,
} from 'n8n-workflow';

const entries = new Map<string, DeduplicationItemTypes[]>();

function scopeKey(scope: DeduplicationScope, context: ICheckProcessedContextData): string {
	return scope === 'node' ? `${context.workflow.id}:${context.node?.name ?? ''}` : context.workflow.id;
}

const memoryStore: IDataDeduplicator = {
	async checkProcessedAndRecord(items, scope, context, options: ICheckProcessedOptions): Promise<IDeduplicationOutput> {
		const key = scopeKey(scope, context);
		const seen = entries.get(key) ?? [];
		const fresh = items.filter((item) => !seen.includes(item));
		const kept = [...seen, ...fresh];
		entries.set(key, options.maxEntries ? kept.slice(-options.maxEntries) : kept);
		return { new: fresh, processed: items.filter((item) => seen.includes(item)) };
	},
	async removeProcessed(items, scope, context) {
		const key = scopeKey(scope, context);
		entries.set(key, (entries.get(key) ?? []).filter((item) => !items.includes(item)));
	},
	async clearAllProcessedItems(scope, context) {
		entries.delete(scopeKey(scope, context));
	},
	async getProcessedDataCount(scope, context) {
		return (entries.get(scopeKey(scope, context)) ?? []).length;
	},
};

let initialised: Promise<void> | undefined;

/** Makes n8n-core's deduplication service use the in-memory store (once per test process). */
export async function useMemoryDeduplication(): Promise<void> {
	initialised ??= (async () => {
		try {
			await DataDeduplicationService.init(memoryStore);
		} catch {
			// Already initialised by another harness in this process.
		}
	})();
	await initialised;
}

/** What the store holds for one workflow's node. */
export function recordedDeliveries(workflowId: string, nodeName: string): DeduplicationItemTypes[] {
	return entries.get(`${workflowId}:${nodeName}`) ?? [];
}
