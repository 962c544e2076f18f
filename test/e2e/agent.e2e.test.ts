/*
 * The node as a tool of n8n's AI Agent, inside real n8n (2.41.1), fully offline: example 4
 * (examples/4-ai-agent.json, started by its Manual Trigger) with n8n's OpenAI Chat Model pointed at a loopback
 * OpenAI-compatible stand-in (scripts/lib/fake-chat-model.js) and the CometAPI simulator.
 *
 * The stand-in records every request, so the tests read what a model is really given: the tool schema (name,
 * description, parameters) and the tool's result. The AI Agent v3 does not run its tools itself: it asks the
 * engine to run them and is resumed with their output, so the tool's own run is found through the agent's
 * `metadata.subNodeExecutionData` (see docs/AI-AGENT-NOTES.md).
 */
import { asVariant, describeRun, E2EInstance, ExecResult, expectSuccess, KLING_NODE_TYPE, nodeNamed } from './harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const examples = require('../../scripts/lib/examples');
const fakeModel = require('../../scripts/lib/fake-chat-model');
/* eslint-enable @typescript-eslint/no-require-imports */

const AGENT = 'AI Agent';
const TOOL_NODE = 'Kling Omni Image';
const TOOL_NAME = 'Kling_Omni_Image';
const MODEL_KEY = 'sk-fake-model-key-for-e2e';
const WORKFLOW = examples.AGENT_EXAMPLE.id as string;
const EMPTY_PROMPT_WORKFLOW = 'klingAgentEmptyPrompt';
const OPERATIONS_WORKFLOW = 'klingAgentOperations';
const RECIPE_WORKFLOW = 'klingAgentRecipe';

interface ChatRequest {
	body: {
		model: string;
		messages: Array<{ role: string; content: any; tool_calls?: any[]; tool_call_id?: string }>;
		tools?: Array<{ type: string; function: { name: string; description: string; parameters: any } }>;
	};
}

/** What the stand-in does next; set by a test's beforeAll, reset after each run. */
const script: {
	chooseTool?: (ctx: { tools: any[] }) => any;
	argumentsFor?: (ctx: { tool: any; userText: string }) => Record<string, unknown>;
} = {};

let e2e: E2EInstance;
let model: {
	url: string;
	model: string;
	label: string;
	chatRequests(): ChatRequest[];
	close(): Promise<void>;
};
let userMessage: string;

interface AgentRun {
	result: ExecResult;
	chats: ChatRequest[];
	creates: Array<{ body: any; taskId?: string }>;
}

async function runAgent(workflowId: string): Promise<AgentRun> {
	const chatsBefore = model.chatRequests().length;
	const simBefore = e2e.sim.requests.length;
	try {
		const result = await e2e.execute(workflowId);
		return {
			result,
			chats: model.chatRequests().slice(chatsBefore),
			creates: e2e.sim.requests.slice(simBefore).filter((r: any) => r.route === 'create') as any,
		};
	} finally {
		script.chooseTool = undefined;
		script.argumentsFor = undefined;
	}
}

/** The tool's own run, found through the agent's metadata.subNodeExecutionData. */
function toolRun(run: AgentRun, nodeName = TOOL_NODE): { action: any; task: any; items: any[] } {
	const agentTask = e2e.task(run.result, AGENT);
	const actions: any[] = agentTask?.metadata?.subNodeExecutionData?.actions ?? [];
	const action = actions.find((a) => a.nodeName === nodeName);
	if (!action) throw new Error(`the agent ran no "${nodeName}" (actions: ${JSON.stringify(actions)}); ${describeRun(run.result)}`);
	const task = run.result.run.data.resultData.runData[nodeName]?.[action.runIndex];
	return { action, task, items: task?.data?.ai_tool?.[0] ?? [] };
}

/** The tool messages the model received in its last request (the results of its tool calls). */
function toolResults(run: AgentRun): string[] {
	const last = run.chats[run.chats.length - 1];
	return (last?.body.messages ?? []).filter((m) => m.role === 'tool').map((m) => String(m.content));
}

function agentOutput(run: AgentRun): any[] {
	return e2e.output(run.result, AGENT);
}

/** A variant of example 4 under a new id. */
function variant(id: string, edit: (workflow: any) => void): any {
	return asVariant(examples.configuredAgentExample({ model: model.model, pollInterval: 1 }), id, edit);
}

beforeAll(async () => {
	e2e = await E2EInstance.create('agent');
	model = await fakeModel.startFakeChatModel({
		apiKey: MODEL_KEY,
		chooseTool: (ctx: any) => (script.chooseTool ? script.chooseTool(ctx) : ctx.tools[0]),
		argumentsFor: (ctx: any) => (script.argumentsFor ? script.argumentsFor(ctx) : fakeModel.defaultArgumentsFor(ctx)),
	});
	try {
		await e2e.instance.importCredentials([examples.openAiCredentialEntry({ apiKey: MODEL_KEY, url: model.url })]);
		const example = examples.configuredAgentExample({ model: model.model, pollInterval: 1 });
		userMessage = nodeNamed(example, 'Sample chat message').parameters.assignments.assignments.find(
			(a: { name: string }) => a.name === 'chatInput',
		).value;
		const operations = variant(OPERATIONS_WORKFLOW, (workflow) => {
			const create = nodeNamed(workflow, TOOL_NODE);
			const taskId = (key: string) => `={{ $fromAI('${key}', 'The task_id that the image tool returned', 'string') }}`;
			workflow.nodes.push(
				{
					...create,
					id: 'op-get',
					name: 'Get image task',
					position: [600, 300],
					parameters: { ...(create.parameters.resource ? { resource: create.parameters.resource } : {}), operation: 'getTask', taskId: taskId('task_id') },
				},
				{
					...create,
					id: 'op-wait',
					name: 'Wait for image task',
					position: [780, 300],
					parameters: {
						...(create.parameters.resource ? { resource: create.parameters.resource } : {}),
						operation: 'waitForCompletion',
						taskId: taskId('task_id'),
						options: { pollInterval: 1 },
					},
				},
			);
			for (const name of ['Get image task', 'Wait for image task']) {
				workflow.connections[name] = { ai_tool: [[{ node: AGENT, type: 'ai_tool', index: 0 }]] };
			}
		});
		await e2e.importWorkflows([example, variant(EMPTY_PROMPT_WORKFLOW, () => {}), operations]);
	} catch (error) {
		await model.close();
		throw error;
	}
});

afterAll(async () => {
	await model?.close();
	await e2e?.close();
});

describe('example 4: Run manually → AI Agent (v3.1) with the OpenAI Chat Model (stand-in) and the node as a tool', () => {
	let run: AgentRun;

	beforeAll(async () => {
		run = await runAgent(WORKFLOW);
	});

	test('runs; the model is asked twice (tool call, then the final answer after the tool result)', () => {
		expectSuccess(run.result);
		expect(run.chats).toHaveLength(2);
		expect(run.chats[0].body.model).toBe(model.model);
		expect(run.chats[0].body.messages.at(-1)).toMatchObject({ role: 'user', content: userMessage });
		expect(run.chats[1].body.messages.at(-1)?.role).toBe('tool');
	});

	test('the model is offered the tool: its name, a description that names image generation, the prompt as a required parameter', () => {
		const tools = run.chats[0].body.tools ?? [];
		expect(tools).toHaveLength(1);
		const [tool] = tools;
		expect(tool.type).toBe('function');
		expect(tool.function.name).toBe(TOOL_NAME);
		expect(tool.function.description).toMatch(/image/i);
		expect(tool.function.description).toMatch(/generat|creat/i);
		expect(tool.function.parameters.required).toEqual(['prompt']);
		expect(tool.function.parameters.properties.prompt).toMatchObject({ type: 'string' });
		expect(tool.function.parameters.properties.prompt.description).toMatch(/description of the image/i);
	});

	test('the description says what the tool returns, that it costs credits and that it takes a while', () => {
		const description = run.chats[0].body.tools![0].function.description;
		expect(description).toMatch(/task[ _]id/i);
		expect(description).toMatch(/URL/);
		expect(description).toMatch(/credit|cost/i);
		expect(description).toMatch(/seconds|minute/i);
	});

	test('exactly one task is created at the simulator, with the prompt the model chose', () => {
		expect(run.creates).toHaveLength(1);
		expect(run.creates[0].body.prompt).toBe(userMessage);
	});

	test("the tool's own run sits under the agent's metadata.subNodeExecutionData, with the model's arguments", () => {
		const { action, task, items } = toolRun(run);
		expect(action.action.input).toEqual({ prompt: userMessage });
		expect(action.action.type).toBe('ai_tool');
		expect(task.executionStatus).toBe('success');
		expect(items).toHaveLength(1);
		expect(items[0].json.error).toBeUndefined();
		expect(items[0].json.task_id).toBe(run.creates[0].taskId);
	});

	test('the model receives a short JSON result: task id, status, image URLs with an expiry note, cost; no Base64', () => {
		const results = toolResults(run);
		expect(results).toHaveLength(1);
		const [content] = results;
		expect(content.length).toBeLessThan(1200);
		expect(content).not.toMatch(/[A-Za-z0-9+/]{200,}/);
		const parsed = JSON.parse(content);
		expect(parsed).toHaveLength(1);
		const [result] = parsed;
		const taskId = run.creates[0].taskId;
		expect(result.task_id).toBe(taskId);
		expect(result.status).toBe('succeed');
		expect(result.image_urls).toEqual([expect.stringContaining(`/images/${taskId}/0.`)]);
		expect(result.cost).toBeDefined();
		expect(content).toMatch(/expire/i);
		// Nothing the model does not need: timestamps, provider fields, duplicated image objects.
		expect(result.created_at).toBeUndefined();
		expect(result.image).toBeUndefined();
	});

	test("the images stay in the tool's run data: n8n 2.41.1 passes only a tool's JSON to the agent", () => {
		const { items } = toolRun(run);
		const binary = items[0].binary?.data;
		expect(binary?.mimeType).toBe('image/png');
		const url = `${e2e.sim.imageUrl}/images/${run.creates[0].taskId}/0.png`;
		expect(e2e.binaryBytes(binary).equals(e2e.sim.expectedImageBytes(url))).toBe(true);
		const [output] = agentOutput(run);
		expect(output.binary).toBeUndefined();
	});

	test("the agent's answer (the chat reply) is the stand-in's, labelled as such, with the task id and the image URL", () => {
		const [output] = agentOutput(run);
		expect(output.json.output).toContain(model.label);
		expect(output.json.output).toContain(run.creates[0].taskId);
		expect(output.json.output).toMatch(/!\[image 1\]\(http:\/\/127\.0\.0\.2:\d+\/images\//);
	});
});

describe('the model passes an empty prompt', () => {
	let run: AgentRun;

	beforeAll(async () => {
		script.argumentsFor = () => ({ prompt: '' });
		run = await runAgent(EMPTY_PROMPT_WORKFLOW);
	});

	test('nothing is created at the simulator', () => {
		expect(run.creates).toHaveLength(0);
	});

	test('the run goes on: the error reaches the model as the tool result, and the agent answers', () => {
		expectSuccess(run.result);
		const { items } = toolRun(run);
		expect(items[0].json.error).toMatch(/prompt/i);
		const [content] = toolResults(run);
		expect(JSON.parse(content)[0].error).toMatch(/prompt/i);
		expect(agentOutput(run)[0].json.output).toMatch(/prompt/i);
	});

	test('the message says what to change', () => {
		const [content] = toolResults(run);
		const { error } = JSON.parse(content)[0];
		expect(error).toMatch(/empty/i);
		expect(error).toMatch(/pass|give|provide|describ/i);
		expect(error).toMatch(/image/i);
	});
});

describe('one tool per operation: each gets a description of its own', () => {
	let run: AgentRun;

	beforeAll(async () => {
		script.chooseTool = () => null; // only look at what is offered
		run = await runAgent(OPERATIONS_WORKFLOW);
	});

	test('the model is offered three tools with distinct descriptions', () => {
		expectSuccess(run.result);
		expect(run.creates).toHaveLength(0);
		const tools = run.chats[0].body.tools ?? [];
		const byName = Object.fromEntries(tools.map((t) => [t.function.name, t.function]));
		expect(Object.keys(byName).sort()).toEqual(['Get_image_task', TOOL_NAME, 'Wait_for_image_task'].sort());
		expect(new Set(tools.map((t) => t.function.description)).size).toBe(3);
		expect(byName.Get_image_task.parameters.required).toEqual(['task_id']);
		expect(byName.Get_image_task.description).toMatch(/status/i);
		expect(byName.Get_image_task.description).toMatch(/task[ _]id/i);
		expect(byName.Wait_for_image_task.description).toMatch(/wait/i);
		expect(byName.Wait_for_image_task.description).toMatch(/task[ _]id/i);
	});
});

describe('the recipe for the files: Get Task with Download Images on the task id the agent returned', () => {
	test('downloads the image the agent made as binary data', async () => {
		const first = await runAgent(WORKFLOW);
		expectSuccess(first.result);
		const taskId = first.creates[0].taskId;
		await e2e.importWorkflows([
			{
				id: RECIPE_WORKFLOW,
				name: 'Recipe: files for a task id',
				active: false,
				nodes: [
					{ id: 'r1', name: 'Run manually', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
					{
						id: 'r2',
						name: 'Task id from the agent',
						type: 'n8n-nodes-base.set',
						typeVersion: 3.4,
						position: [200, 0],
						parameters: {
							assignments: { assignments: [{ id: 'r2-0', name: 'task_id', value: taskId, type: 'string' }] },
							options: {},
						},
					},
					{
						id: 'r3',
						name: 'Get Task',
						type: KLING_NODE_TYPE,
						typeVersion: 1,
						position: [400, 0],
						parameters: { operation: 'getTask', taskId: '={{ $json.task_id }}', downloadImages: true },
						credentials: { cometApiKlingApi: { id: examples.CREDENTIAL.id, name: examples.CREDENTIAL.name } },
					},
				],
				connections: {
					'Run manually': { main: [[{ node: 'Task id from the agent', type: 'main', index: 0 }]] },
					'Task id from the agent': { main: [[{ node: 'Get Task', type: 'main', index: 0 }]] },
				},
				settings: { executionOrder: 'v1' },
			},
		]);
		const result = await e2e.execute(RECIPE_WORKFLOW);
		expectSuccess(result);
		const [item] = e2e.output(result, 'Get Task');
		expect(item.json.task_id).toBe(taskId);
		const url = `${e2e.sim.imageUrl}/images/${taskId}/0.png`;
		expect(e2e.binaryBytes(item.binary!.data).equals(e2e.sim.expectedImageBytes(url))).toBe(true);
	});
});
