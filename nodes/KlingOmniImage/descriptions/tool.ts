import type { INodeProperties } from 'n8n-workflow';

/**
 * What an AI agent's model is told about each operation when the node is attached to an agent as a tool
 * (n8n's `klingOmniImageTool` variant). n8n takes a tool's description from its `toolDescription`
 * parameter; because the node declares one, n8n does not add its own "Set Automatically" field, whose text
 * would come from the operation's `action` — the same text n8n uses for node names, so it has to stay short.
 * `@tool` shows these fields only in the tool variant; the user can edit them there.
 * See docs/AI-AGENT-NOTES.md.
 */
export const TOOL_DESCRIPTIONS: Record<string, string> = {
	createOmniImage:
		'Generates images with Kling Omni Image (through CometAPI) from a text prompt: describe the subject, style, ' +
		'lighting and composition in the prompt. Every call starts a paid task that costs CometAPI credits and ' +
		'usually takes tens of seconds, sometimes a few minutes. Returns JSON: task_id, status, image_urls (temporary ' +
		'URLs that expire), cost and a note. Call it once per requested image set; do not call it again for the same ' +
		'request after it returned a task_id. If status is not "succeed" yet, check the task_id again later.',
	getTask:
		'Reads the current status of a Kling Omni Image task made earlier, by its task_id. Creates nothing and costs ' +
		'nothing. Returns JSON: task_id, status (submitted, processing, succeed or failed), and once it has ' +
		'succeeded image_urls (temporary URLs that expire) and cost; the reason when it failed.',
	waitForCompletion:
		'Waits until a Kling Omni Image task made earlier has finished, by its task_id: it polls, which takes tens ' +
		'of seconds to a few minutes. Creates nothing. Returns JSON: task_id, status (succeed or failed), ' +
		'image_urls (temporary URLs that expire) and cost, or the reason it failed.',
};

export const toolDescriptionProperties: INodeProperties[] = Object.entries(TOOL_DESCRIPTIONS).map(
	([operation, text]) => ({
		displayName: 'Tool Description',
		name: 'toolDescription',
		type: 'string',
		default: text,
		typeOptions: { rows: 4 },
		description:
			'What the AI agent’s model is told this tool does and returns. A clear, specific description helps the model call it well.',
		displayOptions: { show: { '@tool': [true], operation: [operation] } },
	}),
);
