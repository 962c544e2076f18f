/**
 * Two-item runs for the fault tests: items run with "Max Concurrent Requests" 1, so the first queued fault
 * always hits item 0, and "Continue On Fail" is on, so each item ends in a result or its own error.
 */
import type { INodeExecutionData } from 'n8n-workflow';

import type { Fault, Simulator } from '../../simulator';
import { binaryToBuffer } from '../harness';
import { createParams, runKling } from './kling';

export type Json = Record<string, any>;

export const ONE_AT_A_TIME = { pollInterval: 1, maxWaitTime: 30, maxConcurrentRequests: 1 };

/** The error an item ended in (fails the test when the item has none). */
export function errorJson(item: INodeExecutionData): { error: string; description?: string; task_id?: string } {
	expect(item.json).toHaveProperty('error');
	return item.json as { error: string; description?: string; task_id?: string };
}

/** A query fault that asks for an immediate retry. */
export function retryAfterZero(status: number, times = 1): Fault {
	return { route: 'query', type: 'status', status, headers: { 'Retry-After': '0' }, times };
}

/**
 * The runs and request filters against the test file's simulator; `currentSim` is read at each call, as the
 * simulator is started in the file's beforeAll.
 */
export function twoItemRuns(currentSim: () => Simulator) {
	/** Two items, each creating a task; item 0 is sent first. */
	async function createTwo(options: Json = {}, additionalFields: Json = { generateExternalTaskId: true }, waitForCompletion = false) {
		return await runKling(
			currentSim(),
			createParams({
				prompt: '={{ $json.prompt }}',
				waitForCompletion,
				additionalFields,
				options: { ...ONE_AT_A_TIME, ...options },
			}),
			{ inputItems: [{ json: { prompt: 'item 0' } }, { json: { prompt: 'item 1' } }], continueOnFail: true },
		);
	}

	/** Waits for two given tasks and downloads their images. */
	async function waitForTwo(taskIds: string[], options: Json = {}) {
		return await runKling(
			currentSim(),
			{ operation: 'waitForCompletion', taskId: '={{ $json.task_id }}', options: { ...ONE_AT_A_TIME, ...options } },
			{ inputItems: taskIds.map((task_id) => ({ json: { task_id } })), continueOnFail: true },
		);
	}

	function createsOf(prompt: string) {
		return currentSim()
			.apiRequests('create')
			.filter((request) => request.body?.prompt === prompt);
	}

	function queriesOf(taskId: string) {
		return currentSim()
			.apiRequests('query')
			.filter((request) => request.taskId === taskId);
	}

	function imageRequestsOf(taskId: string) {
		return currentSim()
			.imageRequests()
			.filter((request) => request.taskId === taskId);
	}

	/** An image item of a succeeded task carrying the exact bytes the image host serves. */
	async function expectImageItem(item: INodeExecutionData, taskId: string, itemIndex: number): Promise<void> {
		expect(item.json).toMatchObject({ task_id: taskId, status: 'succeed' });
		expect(item.pairedItem).toEqual({ item: itemIndex });
		const url = (item.json.image as { url: string }).url;
		expect(await binaryToBuffer(item.binary!.data)).toEqual(currentSim().expectedImageBytes(url));
	}

	return { createTwo, waitForTwo, createsOf, queriesOf, imageRequestsOf, expectImageItem };
}
