/**
 * Unit-test harness: runs a node's `execute()` through n8n-core's own
 * execution machinery (WorkflowExecute.runNode -> ExecuteContext), so
 * `this.helpers.*` are n8n's real implementations: HTTP goes out over the
 * network (OutboundHttp/axios), binary data is stored by n8n's
 * BinaryDataService, expressions are evaluated by n8n-workflow.
 *
 * See ./README.md for usage and pitfalls.
 */
// Must stay first: sets N8N_USER_FOLDER etc. before any n8n service is built.
import './env';

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { ExecuteContext, ExternalSecretsProxy, WorkflowExecute } from 'n8n-core';
import type {
	CloseFunction,
	ICredentialDataDecryptedObject,
	ICredentialType,
	IDataObject,
	IExecuteData,
	IExecuteFunctions,
	INode,
	INodeExecutionData,
	INodeParameters,
	INodeType,
	INodeTypeDescription,
	INodeTypes,
	IRunExecutionData,
	ITaskData,
	IVersionedNodeType,
	IWorkflowExecuteAdditionalData,
	NodeExecutionHint,
	WorkflowExecuteMode,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeHelpers, Workflow, createRunExecutionData } from 'n8n-workflow';

import {
	DEFAULT_BINARY_MODE,
	HARNESS_WORKFLOW_ID,
	binaryStoragePath,
	binaryToBuffer,
	makeBinary,
	withBinaryMode,
} from './binary';
import type { HarnessBinaryMode, MakeBinaryOptions } from './binary';
import { HarnessCredentialsHelper } from './credentials-helper';
import { harnessTempRoot, removeHarnessTempRoot } from './env';
import { Container } from './n8n-internals';

export { binaryToBuffer, makeBinary, HARNESS_WORKFLOW_ID, DEFAULT_BINARY_MODE };
export type { HarnessBinaryMode, MakeBinaryOptions };
export { HarnessCredentialsHelper };

/** Name of the upstream node that "produced" `inputItems` (usable as `$('Input')`). */
export const INPUT_NODE_NAME = 'Input';

/** Id the harness gives the stored credential (node.credentials[type].id). */
export const HARNESS_CREDENTIAL_ID = 'harness-credential';

export interface RunNodeOptions {
	/** The node under test, e.g. `new KlingOmniImage()`. Versioned node types work too. */
	nodeType: INodeType | IVersionedNodeType;
	/** Node typeVersion. Default: the node type's default (or highest) version. */
	typeVersion?: number;
	/** Credential type the node uses, e.g. `new CometApiKlingApi()`. */
	credentialType?: ICredentialType;
	/** Stored credential values (defaults of the credential type are applied on top, like n8n). */
	credentials?: ICredentialDataDecryptedObject;
	/** Node parameters as saved in a workflow. Defaults are filled in by n8n-workflow. */
	parameters: INodeParameters;
	/** Items on the node's main input. Default `[{ json: {} }]`. `[]` means the node does not run (like n8n). */
	inputItems?: INodeExecutionData[];
	/** Sets the node's "On Error" to "Continue" (`onError: 'continueRegularOutput'`). */
	continueOnFail?: boolean;
	/** n8n binary data mode for this run. Default 'filesystem' (n8n 2.x default). */
	binaryMode?: HarnessBinaryMode;
	/** Becomes `this.getExecutionCancelSignal()`. Default: a signal that is never aborted. */
	abortSignal?: AbortSignal;
	/** Execution mode. Default 'manual' ($execution.mode === 'test'). */
	mode?: WorkflowExecuteMode;
	/** Extra INode fields (name, onError, executeOnce, alwaysOutputData, ...). */
	node?: Partial<Omit<INode, 'parameters' | 'credentials' | 'type' | 'typeVersion'>>;
	/** Workflow timezone (`$now`, `this.getTimezone()`). Default 'UTC'. */
	timezone?: string;
}

export interface RunNodeResult {
	/** What execute() returned (one array per output); `[]` if it threw or did not run. */
	output: INodeExecutionData[][];
	/** What execute() threw (a NodeApiError / NodeOperationError / ...), if anything. */
	error?: unknown;
	/** Hints the node added with `this.addExecutionHints()`. */
	hints: NodeExecutionHint[];
	/** The node as executed (parameters with defaults applied). */
	node: INode;
	/** Stored credential values after the run (e.g. refreshed by preAuthentication). */
	credentials?: ICredentialDataDecryptedObject;
}

// ---------------------------------------------------------------------------

let executionCounter = 0;

const packageName: string = (() => {
	try {
		const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
			name?: string;
		};
		return pkg.name ?? 'n8n-nodes-harness';
	} catch {
		return 'n8n-nodes-harness';
	}
})();

/** Stand-in for the trigger that produced the input items. Never executed. */
class HarnessInputNode implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Harness Input',
		name: 'harnessInput',
		group: ['trigger'],
		version: 1,
		description: 'Provides the input items of the node under test',
		defaults: { name: INPUT_NODE_NAME },
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		properties: [],
	};
}
const INPUT_NODE_TYPE = 'n8n-nodes-harness.harnessInput';

function defaultVersion(nodeType: INodeType | IVersionedNodeType): number {
	if ('nodeVersions' in nodeType) {
		return nodeType.description.defaultVersion ?? nodeType.currentVersion;
	}
	const { version, defaultVersion: dv } = nodeType.description;
	if (dv !== undefined) return dv;
	return Array.isArray(version) ? Math.max(...version) : version;
}

class HarnessNodeTypes implements INodeTypes {
	private readonly types = new Map<string, INodeType | IVersionedNodeType>();

	add(name: string, type: INodeType | IVersionedNodeType) {
		this.types.set(name, type);
	}

	getByName(name: string): INodeType | IVersionedNodeType {
		return this.types.get(name) as INodeType | IVersionedNodeType;
	}

	getByNameAndVersion(name: string, version?: number): INodeType {
		const type = this.types.get(name);
		// Unknown types: undefined, like n8n's NodeTypes for the Workflow constructor.
		if (!type) return undefined as unknown as INodeType;
		return NodeHelpers.getVersionedNodeType(type, version);
	}

	getKnownTypes(): IDataObject {
		return Object.fromEntries([...this.types.keys()].map((k) => [k, {}]));
	}
}

interface Prepared {
	workflow: Workflow;
	node: INode;
	nodeType: INodeType;
	additionalData: IWorkflowExecuteAdditionalData;
	runExecutionData: IRunExecutionData;
	executeData: IExecuteData;
	inputItems: INodeExecutionData[];
	credentialsHelper: HarnessCredentialsHelper;
	mode: WorkflowExecuteMode;
	abortSignal: AbortSignal;
}

function prepare(opts: RunNodeOptions): Prepared {
	const mode = opts.mode ?? 'manual';
	const description = opts.nodeType.description;
	const nodeTypeName = `${packageName}.${description.name}`;
	const typeVersion = opts.typeVersion ?? defaultVersion(opts.nodeType);

	const nodeTypes = new HarnessNodeTypes();
	nodeTypes.add(nodeTypeName, opts.nodeType);
	nodeTypes.add(INPUT_NODE_TYPE, new HarnessInputNode());
	const nodeType = nodeTypes.getByNameAndVersion(nodeTypeName, typeVersion);

	const credentialsHelper = new HarnessCredentialsHelper(nodeTypes);
	let nodeCredentials: INode['credentials'];
	if (opts.credentialType) {
		credentialsHelper.addType(opts.credentialType);
		if (opts.credentials) {
			const name = `${opts.credentialType.displayName} account`;
			credentialsHelper.addCredential({
				id: HARNESS_CREDENTIAL_ID,
				name,
				type: opts.credentialType.name,
				data: opts.credentials,
			});
			nodeCredentials = { [opts.credentialType.name]: { id: HARNESS_CREDENTIAL_ID, name } };
		}
	} else if (opts.credentials) {
		throw new Error('Harness: `credentials` were given without a `credentialType`');
	}

	const nodeName =
		opts.node?.name ?? nodeType.description.defaults?.name ?? nodeType.description.displayName;
	if (nodeName === INPUT_NODE_NAME) {
		throw new Error(`Harness: the node under test cannot be named "${INPUT_NODE_NAME}"`);
	}
	const node: INode = {
		id: 'c0ffee00-0000-4000-8000-000000000001',
		position: [250, 0],
		...opts.node,
		name: nodeName,
		type: nodeTypeName,
		typeVersion,
		// Copied: the Workflow constructor fills in defaults in place.
		parameters: structuredClone(opts.parameters),
		...(nodeCredentials ? { credentials: nodeCredentials } : {}),
		...(opts.continueOnFail ? { onError: 'continueRegularOutput' as const } : {}),
	};
	const inputNode: INode = {
		id: 'c0ffee00-0000-4000-8000-000000000000',
		name: INPUT_NODE_NAME,
		type: INPUT_NODE_TYPE,
		typeVersion: 1,
		position: [0, 0],
		parameters: {},
	};

	const workflow = new Workflow({
		id: HARNESS_WORKFLOW_ID,
		name: 'Harness workflow',
		nodes: [inputNode, node],
		connections: {
			[INPUT_NODE_NAME]: { main: [[{ node: nodeName, type: NodeConnectionTypes.Main, index: 0 }]] },
		},
		active: false,
		nodeTypes,
		settings: { executionOrder: 'v1', timezone: opts.timezone ?? 'UTC' },
	});

	// Items reaching a node in n8n always carry pairedItem (WorkflowExecute adds it);
	// `$('Input').item` needs it. Shallow copies: the caller's items stay untouched.
	const given: INodeExecutionData[] = opts.inputItems ?? [{ json: {} }];
	const inputItems = given.map((item, index) =>
		item.pairedItem === undefined ? { ...item, pairedItem: { item: index } } : item,
	);
	const inputTask: ITaskData = {
		startTime: Date.now(),
		executionTime: 0,
		executionIndex: 0,
		executionStatus: 'success',
		source: [],
		data: { main: [inputItems] },
	};
	const executeData: IExecuteData = {
		node,
		data: { main: [inputItems] },
		source: { main: [{ previousNode: INPUT_NODE_NAME }] },
	};
	const runExecutionData = createRunExecutionData({
		resultData: { runData: { [INPUT_NODE_NAME]: [inputTask] }, lastNodeExecuted: INPUT_NODE_NAME },
		executionData: { nodeExecutionStack: [executeData] },
	});

	const executionId = `harness-${++executionCounter}`;
	const baseUrl = 'http://localhost:5678';
	const unsupported = (what: string) => async () => {
		throw new Error(`Harness: ${what} is not supported`);
	};
	const additionalData: IWorkflowExecuteAdditionalData = {
		credentialsHelper,
		executeWorkflow: unsupported('executeWorkflow'),
		getRunExecutionData: async () => runExecutionData,
		executionId,
		workflowId: HARNESS_WORKFLOW_ID,
		userId: 'harness-user',
		getRuntimeCredential: async () => undefined,
		currentNodeExecutionIndex: 1,
		restApiUrl: `${baseUrl}/rest`,
		instanceBaseUrl: `${baseUrl}/`,
		formBaseUrl: `${baseUrl}/form`,
		formWaitingBaseUrl: `${baseUrl}/form-waiting`,
		formTestBaseUrl: `${baseUrl}/form-test`,
		webhookBaseUrl: `${baseUrl}/webhook`,
		webhookWaitingBaseUrl: `${baseUrl}/webhook-waiting`,
		webhookTestBaseUrl: `${baseUrl}/webhook-test`,
		mcpBaseUrl: `${baseUrl}/mcp`,
		mcpTestBaseUrl: `${baseUrl}/mcp-test`,
		variables: {},
		logAiEvent: () => {},
		startRunnerTask: unsupported('startRunnerTask (Code node task runner)'),
		externalSecretsProxy: Container.get(ExternalSecretsProxy),
	};

	return {
		workflow,
		node,
		nodeType,
		additionalData,
		runExecutionData,
		executeData,
		inputItems,
		credentialsHelper,
		mode,
		abortSignal: opts.abortSignal ?? new AbortController().signal,
	};
}

/**
 * Runs the node's `execute()` once, the way n8n's WorkflowExecute does, and
 * returns its output. Errors thrown by the node are returned, not thrown.
 */
export async function runNode(opts: RunNodeOptions): Promise<RunNodeResult> {
	const p = prepare(opts);
	return await withBinaryMode(opts.binaryMode ?? DEFAULT_BINARY_MODE, async () => {
		const credentials = () =>
			p.credentialsHelper.stored.get(HARNESS_CREDENTIAL_ID)?.data ?? undefined;
		try {
			const workflowExecute = new WorkflowExecute(p.additionalData, p.mode, p.runExecutionData);
			const result = await workflowExecute.runNode(
				p.workflow,
				p.executeData,
				p.runExecutionData,
				0,
				p.additionalData,
				p.mode,
				p.abortSignal,
			);
			const data = 'data' in result ? result.data : undefined;
			const hints = 'hints' in result && Array.isArray(result.hints) ? result.hints : [];
			return {
				output: (data ?? []) as INodeExecutionData[][],
				hints,
				node: p.node,
				credentials: credentials(),
			};
		} catch (error) {
			return { output: [], error, hints: [], node: p.node, credentials: credentials() };
		}
	});
}

/**
 * Lower level: builds the same n8n-core `ExecuteContext` runNode() would and
 * hands it to `fn` (e.g. to unit-test a `this: IExecuteFunctions` helper
 * function). Binary mode is active until `fn` settles.
 */
export async function withExecuteFunctions<T>(
	opts: RunNodeOptions,
	fn: (context: IExecuteFunctions) => Promise<T>,
): Promise<T> {
	const p = prepare(opts);
	return await withBinaryMode(opts.binaryMode ?? DEFAULT_BINARY_MODE, async () => {
		const closeFunctions: CloseFunction[] = [];
		const context = new ExecuteContext(
			p.workflow,
			p.node,
			p.additionalData,
			p.mode,
			p.runExecutionData,
			0,
			p.inputItems,
			p.executeData.data,
			p.executeData,
			closeFunctions,
			p.abortSignal,
		);
		try {
			return await fn(context);
		} finally {
			await Promise.allSettled(closeFunctions.map(async (close) => await close()));
		}
	});
}

/** Temp folders used by this test file's harness (binary data lives in `binaryDataPath`). */
export function harnessPaths(): { root: string; n8nUserFolder: string; binaryDataPath: string } {
	const root = harnessTempRoot();
	return {
		root,
		n8nUserFolder: process.env.N8N_USER_FOLDER ?? join(root, 'user'),
		binaryDataPath: binaryStoragePath(),
	};
}

/** Deletes the harness temp folder. Registered automatically with jest's `afterAll`. */
export function cleanupHarness(): void {
	removeHarnessTempRoot();
}

const jestAfterAll = (globalThis as { afterAll?: (fn: () => void) => void }).afterAll;
if (typeof jestAfterAll === 'function') {
	jestAfterAll(cleanupHarness);
}
