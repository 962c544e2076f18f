import type { IBinaryKeyData, IDataObject, INodeExecutionData } from 'n8n-workflow';

import type { DownloadedImage } from '../images/download';
import type { KlingTask } from './task';

export type OutputMode = 'imagePerItem' | 'taskPerItem';

export interface OutputSettings {
	outputMode: OutputMode;
	binaryPropertyName: string;
}

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
