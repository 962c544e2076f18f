import type { IBinaryKeyData, IDataObject, INodeExecutionData } from 'n8n-workflow';

import type { NodeContext } from '../nodeContext';
import { downloadTaskImages, type DownloadedImage, type DownloadSettings } from '../images/download';
import type { RequestSession } from '../request/session';
import type { KlingTask } from './task';

export type OutputMode = 'imagePerItem' | 'taskPerItem';

export interface OutputSettings {
	outputMode: OutputMode;
	binaryPropertyName: string;
}

/** How a task's images are downloaded and put into items (the download options). */
export type ImageOutputSettings = DownloadSettings & OutputSettings;

/** The task alone, e.g. a created task or one that has not succeeded. */
export function taskItem(task: KlingTask, itemIndex: number): INodeExecutionData {
	return { json: { ...task }, pairedItem: { item: itemIndex } };
}

function imageJson(download: DownloadedImage): IDataObject {
	return {
		index: download.image.index,
		url: download.image.url,
		watermark_url: download.image.watermark_url,
		source_url: download.sourceUrl,
	};
}

/**
 * Items for a succeeded task with its images downloaded. One item per image keeps each image in the
 * same binary field, which storage and chat nodes expect; one item per task names the fields
 * `<field>_0`, `<field>_1`, …
 */
export function imageItems(
	task: KlingTask,
	downloads: DownloadedImage[],
	itemIndex: number,
	settings: OutputSettings,
): INodeExecutionData[] {
	if (downloads.length === 0) return [taskItem(task, itemIndex)];
	if (settings.outputMode === 'imagePerItem') {
		return downloads.map((download) => ({
			json: { ...task, image: imageJson(download) },
			binary: { [settings.binaryPropertyName]: download.binary },
			pairedItem: { item: itemIndex },
		}));
	}
	const binary: IBinaryKeyData = {};
	const binaryProperties = downloads.map((download, position) => {
		const name = `${settings.binaryPropertyName}_${position}`;
		binary[name] = download.binary;
		return name;
	});
	return [
		{
			json: { ...task, binary_properties: binaryProperties, downloaded: downloads.map(imageJson) },
			binary,
			pairedItem: { item: itemIndex },
		},
	];
}

/** A trigger's output carries no pairedItem: no input item of the user's led to it. */
export function unpaired(items: INodeExecutionData[]): INodeExecutionData[] {
	return items.map(({ pairedItem, ...item }) => {
		void pairedItem;
		return item;
	});
}

/**
 * What a node outputs for a task: the task alone, or, once it has succeeded and `images` are wanted,
 * its images downloaded into items. A failed download throws; each caller decides what it becomes.
 */
export async function taskOutput(
	ctx: NodeContext,
	session: RequestSession,
	task: KlingTask,
	itemIndex: number,
	images?: ImageOutputSettings,
): Promise<INodeExecutionData[]> {
	if (!images || task.status !== 'succeed') return [taskItem(task, itemIndex)];
	const downloads = await downloadTaskImages(ctx, session, task, itemIndex, images);
	return imageItems(task, downloads, itemIndex, images);
}

/**
 * The short JSON an AI agent's model gets for one task when the node runs as an agent tool: n8n passes a
 * tool's output JSON to the model verbatim and drops its binary data (docs/AI-AGENT-NOTES.md), so the
 * full task object, provider fields and per-image items would only cost tokens.
 */
export function modelResult(task: IDataObject, filesInOutput: boolean): IDataObject {
	const images = Array.isArray(task.images) ? (task.images as IDataObject[]) : [];
	const urls = images.map((image) => image.url).filter((url): url is string => typeof url === 'string' && url !== '');
	const watermarkUrls = images
		.map((image) => image.watermark_url)
		.filter((url): url is string => typeof url === 'string' && url !== '');
	const result: IDataObject = { task_id: task.task_id, status: task.status };
	if (task.status === 'succeed') {
		result.image_urls = urls;
		if (watermarkUrls.length > 0) result.watermarked_image_urls = watermarkUrls;
		result.cost = task.cost ?? null;
		result.note =
			'The image URLs are temporary and expire (at the latest when the provider deletes the images, after about ' +
			'30 days): give them to the user now. ' +
			(filesInOutput
				? "The image files are in this tool's output in n8n; the agent passes on only this JSON."
				: 'To get the files into a workflow, use Get Task with Download Images on the task_id.');
	} else if (task.status === 'failed') {
		result.reason = task.status_message ?? null;
		result.note = 'The task failed and made no image: change the prompt or inputs and create a new task.';
	} else {
		result.note = 'Not finished yet (it usually takes tens of seconds): check again later with this task_id.';
	}
	return result;
}

/**
 * One item per task for an agent tool: the model's JSON, with the task's image files (if downloaded) kept as
 * binary data so that they stay visible in the tool's run in n8n.
 */
export function modelResultItem(items: INodeExecutionData[], itemIndex: number): INodeExecutionData {
	const binary: IBinaryKeyData = {};
	for (const item of items) {
		for (const [key, data] of Object.entries(item.binary ?? {})) {
			let name = key;
			for (let n = 1; name in binary; n++) name = `${key}_${n}`;
			binary[name] = data;
		}
	}
	const files = Object.keys(binary).length > 0;
	return {
		json: modelResult(items[0]?.json ?? {}, files),
		...(files ? { binary } : {}),
		pairedItem: { item: itemIndex },
	};
}
