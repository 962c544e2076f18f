import type { IDataObject } from 'n8n-workflow';

export interface TaskImage {
	index: number;
	/** null when the API listed the image without a URL: kept, so the gap is reported, not hidden. */
	url: string | null;
	watermark_url: string | null;
}

/** A task as the node outputs it: the API's fields, flattened, with times as ISO strings. */
export interface KlingTask {
	[key: string]: IDataObject[keyof IDataObject];
	task_id: string;
	status: string;
	status_message: string | null;
	external_task_id: string | null;
	result_type: string | null;
	images: TaskImage[];
	cost: string | null;
	created_at: string | null;
	updated_at: string | null;
}

export type Status = 'submitted' | 'processing' | 'succeed' | 'failed';

/**
 * The contract's statuses, and other words for them an API might send (compared case-insensitively),
 * so that "SUCCEED" or "canceled" end the wait instead of being polled until Max Wait Time.
 */
const STATUS_WORDS: Record<string, Status> = {
	submitted: 'submitted',
	queued: 'submitted',
	pending: 'submitted',
	processing: 'processing',
	running: 'processing',
	in_progress: 'processing',
	succeed: 'succeed',
	succeeded: 'succeed',
	success: 'succeed',
	completed: 'succeed',
	failed: 'failed',
	failure: 'failed',
	error: 'failed',
	canceled: 'failed',
	cancelled: 'failed',
};

const KNOWN_STATUSES = new Set<string>(Object.values(STATUS_WORDS));

/**
 * The status as the contract names it, or the API's own word (lower case) when it is unknown. The
 * one reading of status words: the action node's polling and the trigger's callbacks both use it.
 */
export function readStatus(raw: string | null | undefined): string {
	if (raw === null || raw === undefined || raw.trim() === '') return 'unknown';
	const word = raw.trim().toLowerCase();
	return STATUS_WORDS[word.replace(/[\s-]+/g, '_')] ?? word;
}

export function isFinalStatus(status: string): boolean {
	return status === 'succeed' || status === 'failed';
}

/** A status this node knows to be on the way (submitted, processing): not final, and not unknown. */
export function isUnfinishedStatus(status: string): boolean {
	return status === 'submitted' || status === 'processing';
}

export function isTerminal(task: KlingTask): boolean {
	return isFinalStatus(task.status);
}

/** The API sent no status, or one this node does not know: waiting for it to change may be pointless. */
export function hasUnknownStatus(task: KlingTask): boolean {
	return !KNOWN_STATUSES.has(task.status);
}

function asObject(value: unknown): IDataObject {
	return value && typeof value === 'object' && !Array.isArray(value) ? (value as IDataObject) : {};
}

function asText(value: unknown): string | null {
	if (value === undefined || value === null || value === '') return null;
	return String(value);
}

/**
 * Epoch milliseconds (number or numeric string) to ISO. Anything else, a time in nanoseconds
 * included (past the years a Date can hold), is kept as the API's own text: a task must never fail
 * for its timestamp.
 */
function toIsoTime(value: unknown): string | null {
	if (value === undefined || value === null || value === '') return null;
	const ms = Number(value);
	const date = new Date(ms);
	if (!Number.isFinite(ms) || Number.isNaN(date.getTime())) return String(value);
	return date.toISOString();
}

function normalizeImages(result: IDataObject): TaskImage[] {
	const images = Array.isArray(result.images) ? result.images : [];
	return images
		.map((raw, position) => {
			const image = asObject(raw);
			const index = Number(image.index);
			return {
				index: Number.isFinite(index) ? index : position,
				url: asText(image.url),
				watermark_url: asText(image.watermark_url),
			};
		});
}

/** A failure's reason; a task cancelled without one says so, rather than "no reason". */
function statusMessage(data: IDataObject, status: string): string | null {
	const given = asText(data.task_status_msg);
	const raw = asText(data.task_status);
	if (given !== null || status !== 'failed' || raw === null || raw.toLowerCase() === 'failed') return given;
	return `CometAPI reported the task as "${raw}"`;
}

export function normalizeTask(data: IDataObject, fallbackTaskId?: string): KlingTask {
	const result = asObject(data.task_result);
	const status = readStatus(asText(data.task_status));
	return {
		task_id: asText(data.task_id) ?? fallbackTaskId ?? '',
		status,
		status_message: statusMessage(data, status),
		external_task_id: asText(asObject(data.task_info).external_task_id),
		result_type: asText(result.result_type),
		images: normalizeImages(result),
		cost: asText(data.final_unit_deduction),
		created_at: toIsoTime(data.created_at),
		updated_at: toIsoTime(data.updated_at),
	};
}
