'use strict';
// The account's parallel-task limit, counted in slots (as Kling documents it: an image task takes as many
// slots as it makes images, until it ends; queries do not count). Holders are this simulator's
// tasks and slots occupied by "other workflows" on the same account. Everything is judged by the
// simulator clock at the moment of asking, so no timers are needed.

const CODE_PARALLEL_LIMIT = 1303;
const PARALLEL_LIMIT_MESSAGE = 'parallel task over resource pack limit';

function checkLimit(limit) {
	if (limit === undefined || (Number.isInteger(limit) && limit >= 0)) return limit;
	throw new RangeError(`parallelSlots must be a non-negative integer or undefined, got ${limit}`);
}

/**
 * @param clock () => ms
 * @param parallelSlots limit in slots; undefined = unlimited
 */
function createAccount({ clock, parallelSlots }) {
	let limit = checkLimit(parallelSlots);
	let holders = []; // {slots, startsAt, endsAt: () => ms | Infinity}
	let stats = freshStats();

	function freshStats() {
		return { acceptedCreates: 0, rejectedCreates: 0, maxSlotsInUse: 0 };
	}

	function slotsInUse(now = clock()) {
		let sum = 0;
		for (const h of holders) if (h.startsAt <= now && now < h.endsAt()) sum += h.slots;
		return sum;
	}

	function hold(slots, endsAt) {
		const holder = { slots, startsAt: clock(), endsAt };
		holders.push(holder);
		stats.maxSlotsInUse = Math.max(stats.maxSlotsInUse, slotsInUse());
		return holder;
	}

	/** Whether a create asking for `slots` fits now; counts the rejection when it does not. */
	function admits(slots) {
		if (limit === undefined || slotsInUse() + slots <= limit) return true;
		stats.rejectedCreates++;
		return false;
	}

	/** Records an accepted task holding `slots` until `endsAt()` (re-read: failTask can end it early). */
	function holdForTask(slots, endsAt) {
		stats.acceptedCreates++;
		hold(slots, endsAt);
	}

	/** Slots taken by other workflows on the account, until released or durationMs has passed. */
	function occupy(slots, durationMs) {
		if (!Number.isInteger(slots) || slots < 1) throw new RangeError('occupySlots needs a positive integer');
		let releasedAt;
		const until = durationMs === undefined ? Infinity : clock() + durationMs;
		hold(slots, () => releasedAt ?? until);
		return {
			slots,
			release() {
				releasedAt ??= clock();
			},
		};
	}

	return {
		admits,
		holdForTask,
		occupy,
		slotsInUse: () => slotsInUse(),
		get limit() {
			return limit;
		},
		setLimit(n) {
			limit = checkLimit(n);
		},
		stats: () => ({ ...stats, slotsInUse: slotsInUse(), parallelSlots: limit }),
		reset() {
			limit = checkLimit(parallelSlots);
			holders = [];
			stats = freshStats();
		},
	};
}

module.exports = { createAccount, CODE_PARALLEL_LIMIT, PARALLEL_LIMIT_MESSAGE };
