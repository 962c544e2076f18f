'use strict';
// How the provider's answers look on the wire, beyond the contract's own spelling: the words
// used for task statuses and the members of a success envelope. The contract ("What the world
// sends beyond the happy path") warns that proxies and providers spell statuses differently
// (SUCCEED, succeeded, canceled) and that a success may carry `"error": null` beside code 0.
// Only what is sent changes; the simulator's bookkeeping keeps the contract's words.

const { taskData, taskState } = require('./tasks');

const capitalize = (word) => word.charAt(0).toUpperCase() + word.slice(1);

/**
 * Preset spellings. 'past' reads like providers that use past participles: a task that
 * succeeded is `succeeded`; a failed task is `failed`, or `canceled` when it was stopped from
 * outside while running (sim.failTask), as such providers report an interrupted task.
 */
const STATUS_SPELLINGS = {
	contract: (status) => status,
	upper: (status) => status.toUpperCase(),
	capitalized: (status) => capitalize(status),
	past: (status, task) => {
		if (status === 'succeed') return 'succeeded';
		if (status === 'failed' && task.stopped) return 'canceled';
		return status;
	},
};

function resolveStatusSpelling(spelling) {
	if (typeof spelling === 'function') return spelling;
	const preset = STATUS_SPELLINGS[spelling];
	if (!preset) {
		const names = Object.keys(STATUS_SPELLINGS).map((n) => `'${n}'`).join(', ');
		throw new RangeError(`statusSpelling must be a function or one of ${names}, got ${spelling}`);
	}
	return preset;
}

/**
 * @param options resolved simulator options (statusSpelling, successErrorNull)
 * @returns the wire form of task objects and success envelopes, for every sender
 */
function createWire(options) {
	const spellingOf = resolveStatusSpelling(options.statusSpelling);

	/** The wire word of a contract status; `stopped`: the task was failed from outside (failTask). */
	function spell(status, { taskId, stopped = false }) {
		return String(spellingOf(status, { taskId, stopped }));
	}

	return {
		spell,
		/** The task object as sent under `data` (query answers, callbacks) at `now` or in `state`. */
		taskData(task, now, state = taskState(task, now)) {
			const data = taskData(task, now, state);
			data.task_status = spell(state.status, { taskId: task.id, stopped: state.stopped === true });
			return data;
		},
		/** A success envelope: code 0 (and `error: null` with successErrorNull), then `extra`, then data. */
		success(data, extra = {}) {
			return { code: 0, message: 'SUCCEED', ...(options.successErrorNull ? { error: null } : {}), ...extra, data };
		},
	};
}

module.exports = { createWire, resolveStatusSpelling, STATUS_SPELLING_PRESETS: Object.keys(STATUS_SPELLINGS) };
