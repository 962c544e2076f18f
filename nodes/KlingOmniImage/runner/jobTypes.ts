import type { IDataObject, INodeExecutionData } from 'n8n-workflow';

import type { NodeError } from '../../shared/errors';
import type { ImageOutputSettings } from '../../shared/task/output';

/** What one input item asks for: a new task from a create body, or an existing task. */
export type TaskJob =
	| { kind: 'create'; itemIndex: number; body: IDataObject; externalTaskId?: string }
	| { kind: 'existing'; itemIndex: number; taskId: string };

/** What one input item came to: its output items, or its error (for "Continue On Fail"). */
export type ItemOutcome =
	| { itemIndex: number; items: INodeExecutionData[] }
	| { itemIndex: number; error: NodeError; taskId?: string };

export type ItemFailure = Extract<ItemOutcome, { error: unknown }>;

export interface RunSettings {
	waitForCompletion: boolean;
	pollIntervalMs: number;
	maxWaitMs: number;
	download: ImageOutputSettings;
	/** Without "Continue On Fail" the first failure ends the run (other items stop being polled). */
	failFast: boolean;
	/** API requests in flight at once; creates awaiting an answer are bounded by it too. */
	maxConcurrentRequests: number;
}
