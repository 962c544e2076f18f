/** n8n adds "Custom API Call" to the Operation list of nodes whose credential authenticates requests; what a created task leaves in n8n's log. */
import { errorMessage, runKling, startSim } from './support/kling';

it('Custom API Call says where it runs (an HTTP Request node with this credential) and sends nothing', async () => {
	const sim = await startSim();
	try {
		const { error } = await runKling(sim, { operation: '__CUSTOM_API_CALL__' });
		expect(errorMessage(error)).toBe('Custom API Call runs in an HTTP Request node, not in this node');
		expect((error as { description?: string }).description).toMatch(/"Predefined Credential Type", choose "CometAPI API"/);
		expect(sim.requests).toHaveLength(0);
	} finally {
		await sim.close();
	}
});

it("logs each created task's id through n8n's logger at once, so a process that dies while waiting leaves it on record", async () => {
	const { Container, Logger } = await import('./harness/n8n-internals');
	const realLogger = Container.get(Logger);
	// The test process logs nothing (its levels are no-ops), so n8n's logger is swapped for a recorder.
	const info = jest.fn();
	Container.set(Logger, { ...realLogger, info, debug: jest.fn(), warn: jest.fn(), error: jest.fn(), scoped: () => ({ info, debug: jest.fn(), warn: jest.fn(), error: jest.fn() }) } as never);
	const sim = await startSim();
	try {
		const { output } = await runKling(sim, { operation: 'createOmniImage', prompt: 'A lighthouse', waitForCompletion: false });
		const taskId = output[0][0].json.task_id;
		expect(info).toHaveBeenCalledWith('Kling task created', expect.objectContaining({ taskId, itemIndex: 0 }));
	} finally {
		Container.set(Logger, realLogger);
		await sim.close();
	}
});
