import type { IDataObject } from 'n8n-workflow';

export interface TaskImage {
	index: number;
	url: string;
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

export function isTerminal(task: KlingTask): boolean {
	return task.status === 'succeed' || task.status === 'failed';
}

function asObject(value: unknown): IDataObject {
	return value && typeof value === 'object' && !Array.isArray(value) ? (value as IDataObject) : {};
}

function asText(value: unknown): string | null {
	if (value === undefined || value === null || value === '') return null;
	return String(value);
}

/** Epoch milliseconds (number or numeric string) to ISO; anything else is kept as text. */
function toIsoTime(value: unknown): string | null {
	if (value === undefined || value === null || value === '') return null;
	const ms = Number(value);
	if (!Number.isFinite(ms)) return String(value);
	return new Date(ms).toISOString();
}

function normalizeImages(result: IDataObject): TaskImage[] {
	const images = Array.isArray(result.images) ? result.images : [];
	return images
		.map((raw, position) => {
			const image = asObject(raw);
			const index = Number(image.index);
			return {
				index: Number.isFinite(index) ? index : position,
				url: asText(image.url) ?? '',
				watermark_url: asText(image.watermark_url),
			};
		})
		.filter((image) => image.url !== '' || image.watermark_url !== null);
}

export function normalizeTask(data: IDataObject, fallbackTaskId?: string): KlingTask {
	const result = asObject(data.task_result);
	return {
		task_id: asText(data.task_id) ?? fallbackTaskId ?? '',
		status: asText(data.task_status) ?? 'unknown',
		status_message: asText(data.task_status_msg),
		external_task_id: asText(asObject(data.task_info).external_task_id),
		result_type: asText(result.result_type),
		images: normalizeImages(result),
		cost: asText(data.final_unit_deduction),
		created_at: toIsoTime(data.created_at),
		updated_at: toIsoTime(data.updated_at),
	};
}
