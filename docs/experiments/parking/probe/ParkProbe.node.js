'use strict';
/*
 * Throwaway probe for docs/PARKED-WAITS.md (never part of the package). execute() parks the execution with
 * putExecutionToWait and records what it did; webhook() (restartWebhook) records everything it can see of the
 * parked execution, writes to each candidate store, and resumes only when the callback's body says so.
 * Every observation goes as one JSON line to $PARK_PROBE_LOG.
 */
const fs = require('node:fs');

const LOG = process.env.PARK_PROBE_LOG || '/tmp/park-experiment/probe.jsonl';
function record(kind, data) {
	const role = process.argv.slice(2).join(' ') || 'unknown';
	fs.appendFileSync(LOG, JSON.stringify({ kind, pid: process.pid, role, at: new Date().toISOString(), ...data }) + '\n');
}
function attempt(fn) {
	try {
		return { ok: fn() };
	} catch (error) {
		return { error: String(error && error.message ? error.message : error) };
	}
}

class ParkProbe {
	constructor() {
		this.description = {
			displayName: 'Park Probe',
			name: 'parkProbe',
			group: ['transform'],
			version: 1,
			description: 'Parks the execution (experiment)',
			defaults: { name: 'Park Probe' },
			inputs: ['main'],
			outputs: ['main'],
			webhooks: [
				{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', path: '', restartWebhook: true },
			],
			properties: [
				{ displayName: 'Label', name: 'label', type: 'string', default: '' },
				{ displayName: 'Wait Seconds', name: 'waitSeconds', type: 'number', default: 120 },
			],
		};
	}

	async execute() {
		const items = this.getInputData();
		const labels = items.map((_, i) => this.getNodeParameter('label', i));
		const resumeUrl = this.evaluateExpression('{{ $execution.resumeUrl }}', 0);
		const staticData = this.getWorkflowStaticData('node');
		staticData.executeCount = (staticData.executeCount || 0) + 1;
		staticData.setByExecute = `exec ${this.getExecutionId()}`;
		this.customData.set('tasks', 'task-a,task-b,task-c');
		this.customData.set('done', '');
		const dedup = typeof this.helpers.checkProcessedAndRecord;
		let dedupFirst;
		if (dedup === 'function') {
			dedupFirst = await this.helpers.checkProcessedAndRecord(['task-a:final'], 'node', { mode: 'entries' });
		}
		const waitSeconds = this.getNodeParameter('waitSeconds', 0);
		const waitTill = new Date(Date.now() + waitSeconds * 1000);
		record('execute', {
			executionId: this.getExecutionId(),
			itemCount: items.length,
			inputs: items.map((item) => item.json),
			labels,
			resumeUrl,
			waitTill: waitTill.toISOString(),
			staticData: { ...staticData },
			dedupHelper: dedup,
			dedupFirst,
		});
		await this.putExecutionToWait(waitTill);
		return [items.map((item, i) => ({ json: { ...item.json, parkedOutput: `task-${i}` }, pairedItem: { item: i } }))];
	}

	async webhook() {
		const body = this.getBodyData() || {};
		const nodeStatic = this.getWorkflowStaticData('node');
		const seen = {
			executionId: this.getExecutionId(),
			body,
			query: this.getQueryData(),
			labelParam: attempt(() => this.getNodeParameter('label')),
			json: attempt(() => this.evaluateExpression('{{ $json }}')),
			inputAll: attempt(() => this.evaluateExpression('{{ $input.all().map(i => i.json) }}')),
			ownOutput: attempt(() => this.evaluateExpression("{{ $('Park Probe').all().map(i => i.json) }}")),
			ownOutputFirst: attempt(() => this.evaluateExpression("{{ $('Park Probe').first().json.parkedOutput }}")),
			ownOutputString: attempt(() => this.evaluateExpression("{{ JSON.stringify($('Park Probe').all()) }}")),
			ownOutputNode: attempt(() => this.evaluateExpression('{{ $node["Park Probe"].json.parkedOutput }}')),
			splitOutput: attempt(() => this.evaluateExpression("{{ $('Split').all().length }}")),
			runIndex: attempt(() => this.evaluateExpression('{{ $runIndex }}')),
			customData: attempt(() => this.customData.getAll()),
			staticData: { ...nodeStatic },
			dedupHelper: typeof this.helpers.checkProcessedAndRecord,
		};
		// Writes a later call can look for.
		const n = (Number(nodeStatic.webhookCount) || 0) + 1;
		nodeStatic.webhookCount = n;
		nodeStatic[`call_${body.call}`] = true;
		seen.customDataWrite = attempt(() => {
			this.customData.set('done', `${this.customData.get('done') || ''}${body.call},`);
			return this.customData.get('done');
		});
		record('webhook', seen);
		if (body.delayMs) await new Promise((r) => setTimeout(r, Number(body.delayMs)));
		if (body.action === 'resume') {
			return { workflowData: [[{ json: { resumedBy: body.call, pid: process.pid } }]] };
		}
		if (body.action === 'noWebhookResponse') {
			this.getResponseObject().status(202).json({ probe: 'noWebhookResponse', call: body.call });
			return { noWebhookResponse: true };
		}
		if (body.action === 'throw') {
			throw new Error(`probe webhook threw on call ${body.call}`);
		}
		return { webhookResponse: { probe: 'webhookResponse', call: body.call } };
	}
}

module.exports = { ParkProbe };
