'use strict';
/*
 * The example workflows in examples/ and the credential they use, adapted to a particular n8n instance
 * (output folder, upload endpoint, poll interval) before import.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { REPO_ROOT } = require('./n8n-host');

const EXAMPLES_DIR = path.join(REPO_ROOT, 'examples');

/** The credential every example references. */
const CREDENTIAL = { id: 'cometApiKlingCred1', name: 'CometAPI account', type: 'cometApiKlingApi' };

const EXAMPLES = {
	diskFiles: { id: 'klingOmniExample1', file: '1-prompt-reference-to-files.json' },
	scheduledBatch: { id: 'klingOmniExample2', file: '2-scheduled-batch.json' },
	upload: { id: 'klingOmniExample3', file: '3-upload-to-service.json' },
};

const KLING_NODE_TYPE = 'n8n-nodes-cometapi-kling.klingOmniImage';
/** The variant n8n generates for `usableAsTool`, attached to an AI Agent. */
const KLING_TOOL_NODE_TYPE = `${KLING_NODE_TYPE}Tool`;

/**
 * Example 4 (an AI agent with the node as a tool) is kept out of EXAMPLES: it also needs a chat model and its
 * credential, which `npm start` points at the user's endpoint or at scripts/lib/fake-chat-model.js.
 */
const AGENT_EXAMPLE = { id: 'klingOmniExample4', file: '4-ai-agent.json' };
const OPENAI_CREDENTIAL = { id: 'openAiDemoCred1', name: 'OpenAI-compatible model', type: 'openAiApi' };

/**
 * Examples 5 and 6 (a batch that only creates tasks, with the trigger's production URL as callback, and the
 * trigger that receives them) are a pair, kept out of EXAMPLES: example 5's callback URL names the n8n that
 * runs example 6, and both must be published to work.
 */
const CALLBACK_EXAMPLES = {
	batch: { id: 'klingOmniExample5', file: '5-batch-with-callback.json' },
	trigger: { id: 'klingOmniExample6', file: '6-callback-trigger.json' },
};
const KLING_TRIGGER_NODE_TYPE = `${KLING_NODE_TYPE}Trigger`;

/**
 * Example 5's "Start batch" webhook is authenticated by a header: an open URL would let anyone start paid
 * batches. The example references this credential; its value is made per instance (batchStartCredentialEntry).
 */
const BATCH_START_CREDENTIAL = { id: 'klingBatchStartKey', name: 'Batch start key', type: 'httpHeaderAuth' };
const BATCH_START_HEADER = 'X-Batch-Key';
const BATCH_START_PATH = 'kling-batch-start';

function batchStartCredentialEntry(secret) {
	return { ...BATCH_START_CREDENTIAL, data: { name: BATCH_START_HEADER, value: secret } };
}

function loadExample(key) {
	const { file } = EXAMPLES[key];
	return JSON.parse(fs.readFileSync(path.join(EXAMPLES_DIR, file), 'utf8'));
}

function credentialEntry({ apiKey, baseUrl }) {
	return { ...CREDENTIAL, data: { apiKey, baseUrl } };
}

function openAiCredentialEntry({ apiKey, url }) {
	return { ...OPENAI_CREDENTIAL, data: { apiKey, url, header: false } };
}

/**
 * Example 4 configured: `model` (the chat model's id), `pollInterval` (seconds) of the tool, and optionally the
 * message of its "Sample chat message" node.
 */
function configuredAgentExample({ model, pollInterval, chatInput } = {}) {
	const copy = JSON.parse(fs.readFileSync(path.join(EXAMPLES_DIR, AGENT_EXAMPLE.file), 'utf8'));
	const chatModel = copy.nodes.find((n) => n.type === '@n8n/n8n-nodes-langchain.lmChatOpenAi');
	if (model !== undefined) chatModel.parameters.model = { __rl: true, mode: 'id', value: model };
	for (const node of copy.nodes.filter((n) => n.type === KLING_TOOL_NODE_TYPE)) {
		if (pollInterval !== undefined) node.parameters.options = { ...(node.parameters.options || {}), pollInterval };
	}
	if (chatInput !== undefined) {
		const sample = copy.nodes.find((n) => n.name === 'Sample chat message');
		sample.parameters.assignments.assignments.find((a) => a.name === 'chatInput').value = chatInput;
	}
	return copy;
}

/**
 * A copy of a workflow with:
 *  - `settings`: values for the fields of its "Settings" / "Prompts" node (by field name, e.g. output_folder,
 *    upload_url, prompt, prompts); a field not in the node is an error, so a renamed field is noticed;
 *  - `pollInterval`: the poll interval (seconds) of every Kling node that waits;
 *  - `klingParameters`: parameters merged into every Kling node (e.g. {options: {...}}).
 */
function configureWorkflow(workflow, { settings = {}, pollInterval, klingParameters } = {}) {
	const copy = JSON.parse(JSON.stringify(workflow));
	const settingsNode = copy.nodes.find((n) => n.name === 'Settings' || n.name === 'Prompts');
	for (const [name, value] of Object.entries(settings)) {
		const assignment = settingsNode?.parameters?.assignments?.assignments?.find((a) => a.name === name);
		if (!assignment) throw new Error(`workflow "${copy.name}" has no setting "${name}"`);
		assignment.value = assignment.type === 'array' && typeof value !== 'string' ? JSON.stringify(value) : value;
	}
	for (const node of copy.nodes.filter((n) => n.type === KLING_NODE_TYPE)) {
		if (klingParameters) {
			const { options, ...rest } = klingParameters;
			Object.assign(node.parameters, rest);
			if (options) node.parameters.options = { ...(node.parameters.options || {}), ...options };
		}
		const waits =
			node.parameters.operation === 'waitForCompletion' ||
			(node.parameters.operation === 'createOmniImage' && node.parameters.waitForCompletion !== false);
		if (pollInterval !== undefined && waits) {
			node.parameters.options = { ...(node.parameters.options || {}), pollInterval };
		}
	}
	return copy;
}

/** The production URL n8n gives a trigger node of a published workflow: `<n8n>/webhook/<webhookId>/<path>`. */
function triggerProductionUrl(workflow, n8nUrl) {
	const trigger = workflow.nodes.find((n) => n.type === KLING_TRIGGER_NODE_TYPE);
	return `${n8nUrl.replace(/\/+$/, '')}/webhook/${trigger.webhookId}/kling`;
}

/**
 * Examples 5 and 6 configured for one instance: `n8nUrl` (where n8n takes webhooks, e.g. http://localhost:5678),
 * `outputFolder` (both write into `<outputFolder>/callback`), optionally `promptCount` (example 5's batch),
 * `fallbackAfterMinutes` (when example 5 collects the tasks itself) and `pollInterval` (its Wait for Completion).
 * The examples ship no webhook id: each instance gets its own random one, as n8n's editor gives a pasted trigger,
 * so no two installs share a callback URL.
 */
function configuredCallbackExamples({ n8nUrl, outputFolder, promptCount, fallbackAfterMinutes, pollInterval }) {
	const load = ({ file }) => JSON.parse(fs.readFileSync(path.join(EXAMPLES_DIR, file), 'utf8'));
	const trigger = configureWorkflow(load(CALLBACK_EXAMPLES.trigger), {
		settings: { output_folder: path.join(outputFolder, 'callback') },
	});
	for (const node of trigger.nodes.filter((n) => n.type === KLING_TRIGGER_NODE_TYPE)) node.webhookId = crypto.randomUUID();
	const settings = { callback_url: triggerProductionUrl(trigger, n8nUrl), output_folder: path.join(outputFolder, 'callback') };
	if (promptCount !== undefined) settings.prompt_count = promptCount;
	if (fallbackAfterMinutes !== undefined) settings.fallback_after_minutes = fallbackAfterMinutes;
	const batch = configureWorkflow(load(CALLBACK_EXAMPLES.batch), { settings, pollInterval });
	return [batch, trigger];
}

/** All examples, configured for one instance: {outputFolder, uploadUrl, pollInterval}. */
function configuredExamples({ outputFolder, uploadUrl, pollInterval }) {
	return [
		configureWorkflow(loadExample('diskFiles'), { settings: { output_folder: outputFolder }, pollInterval }),
		configureWorkflow(loadExample('scheduledBatch'), {
			settings: { output_folder: path.join(outputFolder, 'batch') },
			pollInterval,
		}),
		configureWorkflow(loadExample('upload'), { settings: { upload_url: uploadUrl }, pollInterval }),
	];
}

module.exports = {
	EXAMPLES_DIR,
	EXAMPLES,
	CREDENTIAL,
	KLING_NODE_TYPE,
	KLING_TOOL_NODE_TYPE,
	AGENT_EXAMPLE,
	OPENAI_CREDENTIAL,
	CALLBACK_EXAMPLES,
	KLING_TRIGGER_NODE_TYPE,
	BATCH_START_CREDENTIAL,
	BATCH_START_HEADER,
	BATCH_START_PATH,
	batchStartCredentialEntry,
	triggerProductionUrl,
	configuredCallbackExamples,
	loadExample,
	credentialEntry,
	openAiCredentialEntry,
	configuredAgentExample,
	configureWorkflow,
	configuredExamples,
};
