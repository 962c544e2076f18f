import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	INodeExecutionData,
	INodeProperties,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { tokenKey } from '../shared/callback/token';
import { CREDENTIAL_TYPE, normalizeBaseUrl } from '../shared/contract';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../shared/request/retry';
import { DOWNLOAD_OPTIONS, readImageOutputSettings } from '../shared/options/download';
import { readRequestTimeoutMs, REQUEST_TIMEOUT_OPTION } from '../shared/options/request';
import { secretRedactor } from '../shared/errors';
import { SHARED_DESCRIPTION } from '../shared/nodeDescription';
import { emittedItems } from './downloads';
import { DEFAULT_RECHECK, handleCallback, type RecheckPolicy, type TriggerSettings } from './handleCallback';
import { processLedger, type TaskLedger } from './ledger';

/** The webhook path under n8n's `/webhook/<webhook id>/`. */
export const CALLBACK_PATH = 'kling';

type ParameterReader = (name: string, fallback: unknown) => unknown;

/**
 * The trigger's options, read alike by webhook() and execute(). webhook() reads the download options
 * too, though execute() uses them: a wrong option is then an error before any task is marked.
 */
function readOptions(parameter: ParameterReader, fail: (message: string) => Error): TriggerSettings {
	const options = parameter('options', {}) as IDataObject;
	return {
		downloadImages: parameter('downloadImages', true) as boolean,
		emitUnfinished: options.emitUnfinished === true,
		output: readImageOutputSettings(options, fail),
		requestTimeoutMs: readRequestTimeoutMs(options.requestTimeout, fail),
	};
}

/** Where the API is and how its key is kept out of texts, from the credential. */
async function connectionOf(ctx: IWebhookFunctions | IExecuteFunctions): Promise<{ baseUrl: string; redact: (text: string) => string; apiKey: unknown }> {
	const credentials = await ctx.getCredentials(CREDENTIAL_TYPE);
	return { baseUrl: normalizeBaseUrl(credentials.baseUrl), redact: secretRedactor(credentials.apiKey), apiKey: credentials.apiKey };
}

function failFor(ctx: IWebhookFunctions | IExecuteFunctions): (message: string) => Error {
	return (message) => new NodeOperationError(ctx.getNode(), message);
}

/** The action node's download options (hidden while Download Images is off), and the trigger's own. */
const TRIGGER_OPTIONS: INodeProperties[] = [
	...DOWNLOAD_OPTIONS.map(
		(option): INodeProperties => ({ ...option, displayOptions: { hide: { '/downloadImages': [false] } } }),
	),
	{
		displayName: 'Emit Unfinished Statuses',
		name: 'emitUnfinished',
		type: 'boolean' as const,
		default: false,
		description:
			'Whether to also start the workflow for "submitted" and "processing" callbacks (checked with the API, once per task and status, without images)',
	},
	REQUEST_TIMEOUT_OPTION,
].sort((a, b) => a.displayName.localeCompare(b.displayName));

export class KlingOmniImageTrigger implements INodeType {
	/**
	 * n8n calls `webhook` with its own context as `this`; the retry and re-check policies and the
	 * ledger of emitted tasks are closed over. n8n constructs the node once per process without
	 * arguments (the process's ledger, the default policies); tests pass their own.
	 */
	webhook: (this: IWebhookFunctions) => Promise<IWebhookResponseData>;

	/**
	 * n8n runs this inside the execution with what `webhook` returned (the verified task): it
	 * downloads the images there, filed under the execution (see downloads.ts).
	 */
	execute: (this: IExecuteFunctions) => Promise<INodeExecutionData[][]>;

	constructor(
		retryPolicy: RetryPolicy = DEFAULT_RETRY_POLICY,
		ledger: TaskLedger = processLedger,
		recheck: RecheckPolicy = DEFAULT_RECHECK,
	) {
		this.webhook = async function (this: IWebhookFunctions) {
			const { apiKey, ...connection } = await connectionOf(this);
			const options = readOptions((name, fallback) => this.getNodeParameter(name, fallback), failFor(this));
			return await handleCallback(this, { ...options, ...connection, tokenKey: tokenKey(apiKey), retryPolicy, recheck, ledger });
		};
		this.execute = async function (this: IExecuteFunctions) {
			const { baseUrl, redact } = await connectionOf(this);
			// The trigger's parameters are not per item: the first item's reading holds for all.
			const options = readOptions((name, fallback) => this.getNodeParameter(name, 0, fallback), failFor(this));
			return [await emittedItems(this, { ...options, baseUrl, redact, retryPolicy })];
		};
	}

	/**
	 * Nothing to register at CometAPI: the callback URL travels with each create request. n8n still
	 * calls these when the workflow is published and unpublished.
	 */
	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				return true;
			},
			async create(this: IHookFunctions): Promise<boolean> {
				return true;
			},
			async delete(this: IHookFunctions): Promise<boolean> {
				return true;
			},
		},
	};

	description: INodeTypeDescription = {
		// "<action node's name> Trigger": n8n's nodes panel lists a trigger named so beside its action node.
		displayName: 'Kling Omni Image (CometAPI) Trigger',
		name: 'klingOmniImageTrigger',
		icon: { light: 'file:klingOmniImage.svg', dark: 'file:klingOmniImage.dark.svg' },
		group: ['trigger'],
		subtitle: 'Finished tasks by callback',
		description: 'Starts the workflow when a Kling Omni Image task created with a callback URL finishes',
		eventTriggerDescription: 'Waiting for a Kling task to finish',
		activationMessage:
			'Kling tasks created with this trigger\'s production URL as Callback URL now start this workflow when they finish.',
		defaults: { name: 'Kling Omni Image Trigger' },
		...SHARED_DESCRIPTION,
		inputs: [],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: CALLBACK_PATH,
			},
		],
		properties: [
			{
				displayName:
					'Copy this node\'s Production URL (Webhook URLs, above) into "Callback URL" under Additional Fields of Create Omni Image, then publish this workflow. Each finished task then starts one execution with the task and its images. Create Omni Image adds a token for each task to that URL; callbacks without a task\'s token, unfinished statuses and repeats are answered and start nothing.',
				name: 'setupNotice',
				type: 'notice',
				default: '',
			},
			{
				displayName: 'Download Images',
				name: 'downloadImages',
				type: 'boolean',
				default: true,
				description:
					'Whether to download the images of a succeeded task as binary data, as Get Task with Download Images does',
			},
			{
				displayName: 'Options',
				name: 'options',
				type: 'collection',
				placeholder: 'Add Option',
				default: {},
				options: TRIGGER_OPTIONS,
			},
		],
	};
}
