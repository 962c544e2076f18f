import type { IDataObject, INodeProperties } from 'n8n-workflow';

import type { ImageOutputSettings, OutputMode } from '../task/output';
import { defaultNumber, type OptionFailure } from './request';

/**
 * The options that say how downloaded images become items, for every node that downloads them.
 * Names, types and defaults are those of the action node's Options, so a workflow reads the same
 * fields whichever node produced the images (a unit test keeps the two in step).
 */
export const OUTPUT_MODE_OPTION: INodeProperties = {
	displayName: 'Output Mode',
	name: 'outputMode',
	type: 'options',
	options: [
		{
			name: 'One Item per Image',
			value: 'imagePerItem',
			description: 'Each image in its own item, in the same binary field',
		},
		{
			name: 'One Item per Task',
			value: 'taskPerItem',
			description: 'All images of a task in one item, in fields data_0, data_1, …',
		},
	],
	default: 'imagePerItem',
};

export const BINARY_PROPERTY_OPTION: INodeProperties = {
	displayName: 'Put Output File in Field',
	name: 'binaryPropertyName',
	type: 'string',
	default: 'data',
	hint: 'The name of the output binary field to put the image in',
};

export const DOWNLOAD_WATERMARKED_OPTION: INodeProperties = {
	displayName: 'Download Watermarked Image',
	name: 'downloadWatermarked',
	type: 'boolean',
	default: false,
	description:
		'Whether to download the watermarked version (needs Watermark turned on when the task was created)',
};

export const MAX_DOWNLOAD_SIZE_OPTION: INodeProperties = {
	displayName: 'Max Download Size (MB)',
	name: 'maxDownloadSizeMb',
	type: 'number',
	typeOptions: { minValue: 1 },
	default: 50,
	description: 'Larger images are refused, so a wrong URL cannot fill the disk',
};

export const DOWNLOAD_OPTIONS: INodeProperties[] = [
	OUTPUT_MODE_OPTION,
	BINARY_PROPERTY_OPTION,
	DOWNLOAD_WATERMARKED_OPTION,
	MAX_DOWNLOAD_SIZE_OPTION,
];

/** Reads the download options, each left empty taking its definition's default. */
export function readImageOutputSettings(options: IDataObject, fail: OptionFailure): ImageOutputSettings {
	const binaryPropertyName = String(options.binaryPropertyName ?? BINARY_PROPERTY_OPTION.default).trim();
	if (!binaryPropertyName) throw fail('Option "Put Output File in Field" must not be empty');
	const outputMode = (options.outputMode ?? OUTPUT_MODE_OPTION.default) as OutputMode;
	if (outputMode !== 'imagePerItem' && outputMode !== 'taskPerItem') {
		throw fail(`Option "Output Mode" "${String(outputMode)}" is not supported`);
	}
	const maxMb =
		options.maxDownloadSizeMb === undefined || options.maxDownloadSizeMb === ''
			? defaultNumber(MAX_DOWNLOAD_SIZE_OPTION)
			: Number(options.maxDownloadSizeMb);
	if (!Number.isFinite(maxMb) || maxMb < 1) {
		throw fail(`Option "Max Download Size" must be a number of at least 1, got "${String(options.maxDownloadSizeMb)}"`);
	}
	return {
		outputMode,
		binaryPropertyName,
		watermarked: options.downloadWatermarked === true,
		maxDownloadBytes: maxMb * 1024 * 1024,
	};
}
