import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';

import { withoutItem } from '../shared/errors';
import { defaultNumber, MAX_CONCURRENT_REQUESTS_OPTION } from '../shared/options/request';
import type { RetryPolicy } from '../shared/request/retry';
import { createRequestSession } from '../shared/request/session';
import { taskOutput, unpaired, type ImageOutputSettings } from '../shared/task/output';
import type { KlingTask } from '../shared/task/task';
import { undelivered } from './delivered';

/**
 * The trigger's step inside the execution. n8n runs a trigger's `execute()` with the items its
 * `webhook()` returned (WorkflowExecute.runNode prefers `execute` to passing webhook output on), in
 * the process that runs the execution: a worker in queue mode. Here
 * - a task an earlier execution delivered is dropped (delivered.ts), whichever process took its
 *   callback;
 * - the images are downloaded, filed under the execution's id, so deleting or pruning the execution
 *   removes them (written in `webhook()`, they were filed under n8n's temporary id and never removed);
 *   and `webhook()` answers and returns at once.
 */
export interface DownloadStepSettings {
	downloadImages: boolean;
	output: ImageOutputSettings;
	requestTimeoutMs: number;
	baseUrl: string;
	redact: (text: string) => string;
	retryPolicy: RetryPolicy;
}

function isSucceededTask(json: INodeExecutionData['json']): json is KlingTask {
	return json.status === 'succeed' && typeof json.task_id === 'string' && Array.isArray(json.images);
}

/** What Get Task with Download Images outputs for the task; a failed download is an item with its reason. */
async function withImages(
	ctx: IExecuteFunctions,
	settings: DownloadStepSettings,
	task: KlingTask,
	itemIndex: number,
): Promise<INodeExecutionData[]> {
	const session = createRequestSession({
		baseUrl: settings.baseUrl,
		timeoutMs: settings.requestTimeoutMs,
		// The trigger has no such option: its downloads take the action node's default.
		maxConcurrentRequests: defaultNumber(MAX_CONCURRENT_REQUESTS_OPTION),
		retry: settings.retryPolicy,
		redact: settings.redact,
	});
	try {
		return await taskOutput(ctx, session, task, itemIndex, settings.output);
	} catch (error) {
		const failure = error as Error & { description?: string };
		ctx.logger.warn(`Kling trigger: ${failure.message}`);
		return [
			{
				json: {
					...task,
					error: withoutItem(failure.message),
					error_description: failure.description ?? null,
				},
			},
		];
	}
}

/** The emitted tasks, each succeeded one with its images when Download Images is on. */
export async function emittedItems(ctx: IExecuteFunctions, settings: DownloadStepSettings): Promise<INodeExecutionData[]> {
	const items = await undelivered(ctx, ctx.getInputData());
	const output: INodeExecutionData[][] = await Promise.all(
		items.map(async (item, itemIndex) =>
			settings.downloadImages && isSucceededTask(item.json)
				? await withImages(ctx, settings, item.json, itemIndex)
				: [{ json: item.json }],
		),
	);
	return unpaired(output.flat());
}
