/**
 * The shipped example workflows: nothing in them that every install would share (a trigger's
 * webhook id, a callback URL) and no open webhook that starts paid work.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/* eslint-disable @typescript-eslint/no-require-imports */
const examples = require('../scripts/lib/examples');
/* eslint-enable @typescript-eslint/no-require-imports */

const files = fs.readdirSync(examples.EXAMPLES_DIR).filter((file: string) => file.endsWith('.json'));
const workflows = files.map((file: string) => ({ file, workflow: JSON.parse(fs.readFileSync(path.join(examples.EXAMPLES_DIR, file), 'utf8')) }));

describe('the example workflows', () => {
	it('ship no webhook id for the Kling trigger and no callback URL', () => {
		const triggers = workflows.flatMap(({ workflow }: any) => workflow.nodes.filter((n: any) => n.type === examples.KLING_TRIGGER_NODE_TYPE));
		expect(triggers.length).toBeGreaterThan(0);
		for (const trigger of triggers) expect(trigger.webhookId).toBeUndefined();
		for (const { file, workflow } of workflows) {
			const text = JSON.stringify(workflow.nodes.filter((n: any) => n.type !== 'n8n-nodes-base.stickyNote'));
			expect([file, /https?:\/\/[^"]*\/webhook(-test)?\/[^"]*\/kling/.test(text)]).toEqual([file, false]);
		}
	});

	it('start paid work from no unauthenticated webhook', () => {
		for (const { file, workflow } of workflows) {
			for (const node of workflow.nodes.filter((n: any) => n.type === 'n8n-nodes-base.webhook')) {
				expect([file, node.name, node.parameters.authentication ?? 'none']).toEqual([file, node.name, 'headerAuth']);
				expect(node.credentials.httpHeaderAuth.id).toBe(examples.BATCH_START_CREDENTIAL.id);
			}
		}
	});

	it('get a random webhook id per instance, and example 5 the trigger\'s URL with it', () => {
		const configure = () => examples.configuredCallbackExamples({ n8nUrl: 'http://localhost:5678', outputFolder: '/tmp/kling' });
		const [batchA, triggerA] = configure();
		const [, triggerB] = configure();
		const idOf = (workflow: any) => workflow.nodes.find((n: any) => n.type === examples.KLING_TRIGGER_NODE_TYPE).webhookId;
		expect(idOf(triggerA)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
		expect(idOf(triggerA)).not.toBe(idOf(triggerB));
		const settings = batchA.nodes.find((n: any) => n.name === 'Settings').parameters.assignments.assignments;
		expect(settings.find((a: any) => a.name === 'callback_url').value).toBe(`http://localhost:5678/webhook/${idOf(triggerA)}/kling`);
	});
});
