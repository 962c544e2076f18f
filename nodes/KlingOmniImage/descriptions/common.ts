import type { INodeProperties } from 'n8n-workflow';
import { updateDisplayOptions } from 'n8n-workflow';

import { DOWNLOAD_OPTIONS } from '../../shared/options/download';
import { MAX_CONCURRENT_REQUESTS_OPTION, MAX_TIMER_SECONDS, REQUEST_TIMEOUT_OPTION } from '../../shared/options/request';

/** The task id input shared by Get Task and Wait for Completion. */
export const taskIdProperty: INodeProperties = {
	displayName: 'Task ID',
	name: 'taskId',
	type: 'string',
	required: true,
	default: '={{ $json.task_id }}',
	placeholder: 'e.g. 874512093471236096',
	description:
		'ID of the Kling task, as returned by Create Omni Image. The default reads it from the incoming item.',
};

/** Polling options, by name: only for the operations that wait. */
export const POLLING_OPTIONS = {
	pollInterval: {
		displayName: 'Poll Interval (Seconds)',
		name: 'pollInterval',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: MAX_TIMER_SECONDS },
		default: 20,
		description:
			'How long to wait between status checks. CometAPI advises 20–30 seconds; all pending tasks are checked together each round.',
	},
	maxWaitTime: {
		displayName: 'Max Wait Time (Seconds)',
		name: 'maxWaitTime',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 600,
		description:
			'How long to wait for the tasks to finish before giving up with an error that names the task ID. The task itself is not cancelled.',
	},
} satisfies Record<string, INodeProperties>;

const pollingOptions: INodeProperties[] = Object.values(POLLING_OPTIONS);

/** Options that apply to every request the node sends. */
const requestOptions = [MAX_CONCURRENT_REQUESTS_OPTION, REQUEST_TIMEOUT_OPTION];

/** Hides an option while the operation's own switch (Wait for Completion, Download Images) is off. */
function onlyWhen(toggle: string | undefined, option: INodeProperties): INodeProperties {
	return toggle ? { ...option, displayOptions: { hide: { [`/${toggle}`]: [false] } } } : option;
}

/**
 * The Options collection of one operation. Each operation gets its own copy: a shared one would be
 * hidden by another operation's switch, since n8n evaluates hidden parameters at their defaults.
 */
interface OptionFeatures {
	/** The operation waits for tasks: poll interval and max wait time apply. */
	polling: boolean;
	/** The operation's own switch that turns downloading off, if any. */
	downloadToggle?: string;
}

function optionsProperty(features: OptionFeatures): INodeProperties {
	const waiting = [...(features.polling ? pollingOptions : []), ...DOWNLOAD_OPTIONS];
	return {
		displayName: 'Options',
		name: 'options',
		type: 'collection',
		placeholder: 'Add Option',
		default: {},
		options: [...waiting.map((option) => onlyWhen(features.downloadToggle, option)), ...requestOptions].sort(
			(a, b) => a.displayName.localeCompare(b.displayName),
		),
	};
}

/** An operation's fields followed by its Options collection, shown only for that operation. */
export function operationProperties(
	operation: string,
	fields: INodeProperties[],
	options: OptionFeatures,
): INodeProperties[] {
	return updateDisplayOptions({ show: { operation: [operation] } }, [...fields, optionsProperty(options)]);
}
