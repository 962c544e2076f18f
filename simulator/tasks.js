'use strict';
// Task timeline: a task's status is a pure function of its record and the simulator clock.
// submitted from createdAt, processing from half of durationMs, terminal at durationMs;
// failTask() sets failedAt, which makes the task failed from then on (`stopped`: from outside).
// A state can be asked for any time, also a past one (a lagging query replica looks back).

const RESULT_LONG_SIDE = 256; // generated results are small: fast to build, any size via padding
const DEFAULT_FAIL_REASON = 'Image generation failed (simulated)';
const TERMINAL = new Set(['succeed', 'failed']);

const isTerminal = (status) => TERMINAL.has(status);

/** Images a create body asks for; an image task takes that many parallel-task slots. */
function requestedImages(body) {
	return body.result_type === 'series' ? body.series_amount ?? 4 : body.n ?? 1;
}

/** Width/height of generated results: the requested aspect ratio, long side RESULT_LONG_SIDE. */
function resultDimensions(aspectRatio) {
	const [w, h] = /^\d+:\d+$/.test(aspectRatio ?? '') ? aspectRatio.split(':').map(Number) : [1, 1];
	const scale = RESULT_LONG_SIDE / Math.max(w, h);
	return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
}

/** Status of a task at time `now`, derived from its timeline (or a forced failure). */
function taskState(task, now) {
	if (task.failedAt !== undefined && now >= task.failedAt) {
		return { status: 'failed', updatedAt: task.failedAt, message: task.failReason, stopped: true };
	}
	const elapsed = now - task.createdAt;
	if (elapsed >= task.durationMs) {
		const failed = task.outcome === 'failed';
		return {
			status: failed ? 'failed' : 'succeed',
			updatedAt: task.createdAt + task.durationMs,
			message: failed ? task.failReason : '',
		};
	}
	if (elapsed >= task.durationMs / 2) return processingState(task);
	return submittedState(task);
}

function submittedState(task) {
	return { status: 'submitted', updatedAt: task.createdAt, message: '' };
}

function processingState(task) {
	return { status: 'processing', updatedAt: task.createdAt + Math.floor(task.durationMs / 2), message: '' };
}

/** When the task reaches a terminal status (and frees its slots). */
function taskEndsAt(task) {
	const natural = task.createdAt + task.durationMs;
	return task.failedAt === undefined ? natural : Math.min(task.failedAt, natural);
}

/** The task object as the query answers it under `data` (`state` defaults to the one at `now`). */
function taskData(task, now, state = taskState(task, now)) {
	const data = {
		task_id: task.id,
		task_info: { external_task_id: task.externalTaskId ?? null },
		task_status: state.status,
		task_status_msg: state.message,
		created_at: task.createdAt,
		updated_at: state.updatedAt,
	};
	if (state.status === 'succeed') {
		data.task_result = { result_type: task.resultType, images: task.images.map((img) => ({ ...img })) };
		data.final_unit_deduction = String(task.imageCount);
	}
	return data;
}

/**
 * The statuses a task went through since `lastStatus` up to `now`, in order, each as the
 * state it had then; what status-change callbacks must report. Processing is included only
 * when the task really had a processing phase (not failed before it, not zero-length).
 */
function statusesSince(task, lastStatus, now) {
	const current = taskState(task, now);
	if (current.status === lastStatus) return [];
	const out = [];
	if (lastStatus === undefined) out.push(submittedState(task));
	if (current.status === 'submitted') return out;
	const processingAt = task.createdAt + task.durationMs / 2;
	const hadProcessing =
		task.durationMs > 0 && (task.failedAt === undefined || task.failedAt >= processingAt);
	if ((lastStatus === undefined || lastStatus === 'submitted') && hadProcessing) out.push(processingState(task));
	if (isTerminal(current.status)) out.push(current);
	return out;
}

module.exports = {
	DEFAULT_FAIL_REASON,
	isTerminal,
	requestedImages,
	resultDimensions,
	taskState,
	taskEndsAt,
	taskData,
	statusesSince,
};
