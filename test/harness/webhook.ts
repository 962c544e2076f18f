/**
 * Webhook harness: calls a trigger node's `webhook()` through n8n-core's own `WebhookContext`, the
 * way n8n 2.x's live webhooks do (packages/cli/src/webhooks/live-webhooks.ts):
 * - every call builds a fresh `Workflow` whose static data is a copy of what the "database" holds,
 *   and after the call writes the whole static data object back when the node changed it: so
 *   concurrent calls overwrite each other's changes exactly as in n8n (last writer wins);
 * - the request carries `body` (as n8n's body parser leaves it), `rawBody` and `headers`; the
 *   response records what the node answered through `getResponseObject()` and when;
 * - `this.helpers.*` are n8n's real implementations (HTTP, binary data), credentials come from the
 *   harness's credentials helper.
 * A new `WebhookTrigger` with the same stored static data stands for the same workflow after a restart.
 */
import './env';

import { ExecuteContext, WebhookContext } from 'n8n-core';
import type {
	CloseFunction,
	ICredentialDataDecryptedObject,
	ICredentialType,
	IDataObject,
	INode,
	INodeExecutionData,
	INodeParameters,
	INodeType,
	INodeTypes,
	IWebhookData,
	IWebhookResponseData,
	IWorkflowExecuteAdditionalData,
	WorkflowExecuteMode,
} from 'n8n-workflow';
import { createRunExecutionData, NodeHelpers, Workflow } from 'n8n-workflow';

import { DEFAULT_BINARY_MODE, withBinaryMode, type HarnessBinaryMode } from './binary';
import { useMemoryDeduplication } from './deduplication';
import { HarnessCredentialsHelper } from './credentials-helper';

const PACKAGE_PREFIX = 'n8n-nodes-cometapi-kling';
const CREDENTIAL_ID = 'harness-webhook-credential';

export interface WebhookTriggerOptions {
	nodeType: INodeType;
	credentialType?: ICredentialType;
	credentials?: ICredentialDataDecryptedObject;
	parameters?: INodeParameters;
	/** 'webhook' (a published workflow's production URL, the default) or 'manual' (test URL). */
	mode?: WorkflowExecuteMode;
	/** The static data the "database" holds at the start (e.g. from a trigger before a restart). */
	staticData?: IDataObject;
	workflowId?: string;
	/** The trigger node's webhook id (a path segment of its URL); default a fixed UUID. */
	webhookId?: string;
	binaryMode?: HarnessBinaryMode;
}

export interface WebhookRequest {
	/** The parsed body as n8n's body parser leaves it (an object for JSON). Default: parsed from rawBody. */
	body?: unknown;
	/** The bytes as received. Default: JSON of `body`. */
	rawBody?: Buffer | string;
	headers?: Record<string, string>;
	/** The URL the caller used (path and query); default: the trigger's production path. */
	url?: string;
	/** Told the node's answer as soon as it answers (n8n sends it then, before any execution runs). */
	onAnswer?: (status: number, body: unknown) => void;
}

export interface WebhookCallResult {
	/** HTTP status the node answered with (undefined: it answered nothing itself). */
	status?: number;
	/** The body it answered with. */
	body?: unknown;
	/** Milliseconds from the call to the node's answer, and to webhook() returning. */
	answeredAfterMs?: number;
	/** When the node answered (Date.now()): the order callers saw the answers in. */
	answeredAt?: number;
	returnedAfterMs: number;
	/** What webhook() returned. */
	result?: IWebhookResponseData;
	/** What webhook() threw. */
	error?: unknown;
	/** The trigger's output in the execution: what its execute() made of webhook()'s items ([] when none is started). */
	items: INodeExecutionData[];
	/** What webhook() returned for the execution. */
	webhookItems: INodeExecutionData[];
	/** What execute() threw. */
	executeError?: unknown;
	/** Whether an execution would start (webhook() returned workflowData). */
	started: boolean;
}

class SingleNodeTypes implements INodeTypes {
	constructor(
		private readonly name: string,
		private readonly type: INodeType,
	) {}

	getByName(name: string): INodeType {
		return (name === this.name ? this.type : undefined) as INodeType;
	}

	getByNameAndVersion(name: string): INodeType {
		return this.getByName(name);
	}

	getKnownTypes(): IDataObject {
		return { [this.name]: {} };
	}
}

let callCounter = 0;

export class WebhookTrigger {
	/** The static data as n8n's database would hold it after the calls so far. */
	storedStaticData: IDataObject;

	/** Every call's result, in the order the calls returned. */
	readonly calls: WebhookCallResult[] = [];

	readonly node: INode;

	private readonly nodeTypes: SingleNodeTypes;

	private readonly credentialsHelper: HarnessCredentialsHelper;

	constructor(private readonly options: WebhookTriggerOptions) {
		const typeName = `${PACKAGE_PREFIX}.${options.nodeType.description.name}`;
		this.nodeTypes = new SingleNodeTypes(typeName, options.nodeType);
		this.credentialsHelper = new HarnessCredentialsHelper(this.nodeTypes);
		let credentials: INode['credentials'];
		if (options.credentialType) {
			this.credentialsHelper.addType(options.credentialType);
			if (options.credentials) {
				const name = `${options.credentialType.displayName} account`;
				this.credentialsHelper.addCredential({
					id: CREDENTIAL_ID,
					name,
					type: options.credentialType.name,
					data: options.credentials,
				});
				credentials = { [options.credentialType.name]: { id: CREDENTIAL_ID, name } };
			}
		}
		this.node = {
			id: 'c0ffee00-0000-4000-8000-00000000beef',
			name: options.nodeType.description.defaults.name ?? options.nodeType.description.displayName,
			type: typeName,
			typeVersion: 1,
			position: [0, 0],
			webhookId: options.webhookId ?? '5f1c0a8e-6b1d-4f57-9a43-1c2b3d4e5f60',
			parameters: options.parameters ?? {},
			...(credentials ? { credentials } : {}),
		};
		this.storedStaticData = JSON.parse(JSON.stringify(options.staticData ?? {})) as IDataObject;
	}

	get mode(): WorkflowExecuteMode {
		return this.options.mode ?? 'webhook';
	}

	/** The production URL n8n shows for the trigger (`/webhook/<webhookId>/<path>`). */
	productionUrl(baseUrl = 'http://localhost:5678'): string {
		const path = this.options.nodeType.description.webhooks?.[0]?.path ?? '';
		return `${baseUrl}/webhook/${this.node.webhookId}/${String(path)}`;
	}

	private readonly inFlight = new Set<Promise<WebhookCallResult>>();

	/** Resolves once every call made so far has returned, its execution step included. */
	async idle(): Promise<void> {
		while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
	}

	/** One POST to the trigger. */
	async call(request: WebhookRequest): Promise<WebhookCallResult> {
		const running = this.callOnce(request);
		this.inFlight.add(running);
		try {
			return await running;
		} finally {
			this.inFlight.delete(running);
		}
	}

	private async callOnce(request: WebhookRequest): Promise<WebhookCallResult> {
		await useMemoryDeduplication();
		const started = Date.now();
		const rawBody =
			request.rawBody === undefined
				? request.body === undefined
					? Buffer.alloc(0)
					: Buffer.from(JSON.stringify(request.body))
				: Buffer.from(request.rawBody);
		const headers: Record<string, string> = {
			'content-type': 'application/json',
			'content-length': String(rawBody.length),
			...request.headers,
		};
		let body = request.body;
		if (body === undefined && headers['content-type'].startsWith('application/json') && rawBody.length) {
			body = JSON.parse(rawBody.toString('utf8')) as unknown;
		}
		const url = new URL(request.url ?? this.productionUrl(), 'http://localhost:5678');
		const httpRequest = {
			method: 'POST',
			body: body ?? {},
			rawBody,
			headers,
			params: {},
			query: Object.fromEntries(url.searchParams),
			originalUrl: `${url.pathname}${url.search}`,
			url: `${url.pathname}${url.search}`,
		};

		const answer: { status?: number; body?: unknown; at?: number } = {};
		const httpResponse = {
			headersSent: false,
			statusCode: 200,
			status(code: number) {
				this.statusCode = code;
				return this;
			},
			json(value: unknown) {
				return this.send(value);
			},
			send(value: unknown) {
				if (this.headersSent) throw new Error('Harness: the response was sent twice');
				this.headersSent = true;
				answer.status = this.statusCode;
				answer.body = value;
				answer.at = Date.now();
				request.onAnswer?.(this.statusCode, value);
				return this;
			},
			end(value?: unknown) {
				return this.send(value);
			},
			setHeader() {
				return this;
			},
		};

		// A fresh Workflow per call, its static data loaded from the "database", as live webhooks do.
		const workflow = new Workflow({
			id: this.options.workflowId ?? 'harness-trigger-workflow',
			name: 'Harness trigger workflow',
			nodes: [{ ...this.node, parameters: structuredClone(this.node.parameters) }],
			connections: {},
			active: true,
			nodeTypes: this.nodeTypes,
			staticData: JSON.parse(JSON.stringify(this.storedStaticData)) as IDataObject,
			settings: { executionOrder: 'v1', timezone: 'UTC' },
		});
		const node = workflow.getNode(this.node.name) as INode;
		const baseUrl = 'http://localhost:5678';
		const additionalData = {
			credentialsHelper: this.credentialsHelper,
			executionId: `harness-webhook-${++callCounter}`,
			workflowId: workflow.id,
			restApiUrl: `${baseUrl}/rest`,
			instanceBaseUrl: `${baseUrl}/`,
			webhookBaseUrl: `${baseUrl}/webhook`,
			webhookWaitingBaseUrl: `${baseUrl}/webhook-waiting`,
			webhookTestBaseUrl: `${baseUrl}/webhook-test`,
			formWaitingBaseUrl: `${baseUrl}/form-waiting`,
			variables: {},
			httpRequest,
			httpResponse,
		} as unknown as IWorkflowExecuteAdditionalData;
		const description = this.options.nodeType.description.webhooks?.[0];
		if (!description) throw new Error('Harness: the node declares no webhook');
		const webhookData = {
			httpMethod: 'POST',
			node: node.name,
			path: String(description.path),
			webhookDescription: description,
			workflowId: workflow.id,
			workflowExecuteAdditionalData: additionalData,
			webhookId: node.webhookId,
		} as unknown as IWebhookData;
		const closeFunctions: CloseFunction[] = [];
		const context = new WebhookContext(workflow, node, additionalData, this.mode, webhookData, closeFunctions, null);

		const webhook = this.options.nodeType.webhook;
		if (!webhook) throw new Error('Harness: the node has no webhook method');
		let result: IWebhookResponseData | undefined;
		let error: unknown;
		await withBinaryMode(this.options.binaryMode ?? DEFAULT_BINARY_MODE, async () => {
			try {
				result = await webhook.call(context);
			} catch (thrown) {
				error = thrown;
			}
		});
		// n8n saves static data when the node changed it, the whole object, whatever others saved meanwhile.
		const staticData = workflow.staticData as IDataObject & { __dataChanged?: boolean };
		if (staticData.__dataChanged === true) {
			this.storedStaticData = JSON.parse(JSON.stringify(staticData)) as IDataObject;
		}
		const webhookItems = result?.workflowData?.[0] ?? [];
		const { items, executeError } = await this.runInExecution(workflow, node, webhookItems, additionalData);
		const outcome: WebhookCallResult = {
			status: answer.status,
			body: answer.body,
			answeredAfterMs: answer.at === undefined ? undefined : answer.at - started,
			answeredAt: answer.at,
			returnedAfterMs: Date.now() - started,
			result,
			error,
			items,
			webhookItems,
			executeError,
			started: result?.workflowData !== undefined,
		};
		this.calls.push(outcome);
		return outcome;
	}

	/**
	 * What the execution gets from the trigger: n8n's WorkflowExecute.runNode runs a trigger's
	 * execute() with webhook()'s items as input when the node has one, and passes them on otherwise.
	 */
	private async runInExecution(
		workflow: Workflow,
		node: INode,
		webhookItems: INodeExecutionData[],
		webhookAdditionalData: IWorkflowExecuteAdditionalData,
	): Promise<{ items: INodeExecutionData[]; executeError?: unknown }> {
		const execute = this.options.nodeType.execute;
		if (!execute || webhookItems.length === 0) return { items: webhookItems };
		const executeData = { node, data: { main: [webhookItems] }, source: null };
		const runExecutionData = createRunExecutionData({ executionData: { nodeExecutionStack: [executeData] } });
		const additionalData = {
			...webhookAdditionalData,
			executionId: `harness-execution-${++callCounter}`,
			getRunExecutionData: async () => runExecutionData,
		} as IWorkflowExecuteAdditionalData;
		const closeFunctions: CloseFunction[] = [];
		const context = new ExecuteContext(workflow, node, additionalData, this.mode, runExecutionData, 0, webhookItems, executeData.data, executeData, closeFunctions);
		try {
			return await withBinaryMode(this.options.binaryMode ?? DEFAULT_BINARY_MODE, async () => {
				const output = await execute.call(context);
				return { items: (output as INodeExecutionData[][])[0] ?? [] };
			});
		} catch (error) {
			return { items: [], executeError: error };
		} finally {
			await Promise.allSettled(closeFunctions.map(async (close) => await close()));
		}
	}

	/** The node's static data as stored ("node:<name>"). */
	nodeStaticData(): IDataObject {
		return (this.storedStaticData[`node:${this.node.name}`] ?? {}) as IDataObject;
	}
}

/** Node parameters with the node type's defaults, as n8n would store them. */
export function withDefaults(nodeType: INodeType, parameters: INodeParameters): INodeParameters {
	return (NodeHelpers.getNodeParameters(nodeType.description.properties, parameters, true, false, null, null) ??
		{}) as INodeParameters;
}
