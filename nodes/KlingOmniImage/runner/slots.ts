/**
 * The account's parallel-task limit as this run learns it, in slots (a task takes one per image).
 * Unknown until the first 1303 answer; then the run keeps at most that many slots of its own in
 * flight, and probes for more only once per probe interval (other workflows on the account may have
 * freed slots, or the limit may be higher than what was free at the time).
 */
export class SlotLimit {
	private limit = Number.POSITIVE_INFINITY;

	private inFlight = 0;

	/** Slots of creates sent and not yet answered: they may all be accepted. */
	private pending = 0;

	private lastProbeAt = 0;

	constructor(private readonly probeIntervalMs: number) {}

	/** Whether a create taking `slots` may be sent now, and whether it is a probe beyond the limit. */
	admit(slots: number, now = Date.now()): 'send' | 'probe' | 'wait' {
		if (this.inFlight + this.pending + slots <= this.limit) return 'send';
		// One probe at a time, and none while other creates may still take the free slots.
		if (this.pending === 0 && now - this.lastProbeAt >= this.probeIntervalMs) {
			this.lastProbeAt = now;
			return 'probe';
		}
		return 'wait';
	}

	sent(slots: number): void {
		this.pending += slots;
	}

	accepted(slots: number): void {
		this.pending -= slots;
		this.inFlight += slots;
		if (this.inFlight > this.limit) this.limit = this.inFlight;
	}

	/** A 1303: the account holds no more than what this run has in flight now (others may hold the rest). */
	rejected(slots: number, now = Date.now()): void {
		this.pending -= slots;
		this.limit = this.inFlight;
		this.lastProbeAt = now;
	}

	/** A create that failed otherwise: it took no slot. */
	abandoned(slots: number): void {
		this.pending -= slots;
	}

	/** One of this run's tasks ended, or is no longer counted. */
	released(slots: number): void {
		this.inFlight = Math.max(0, this.inFlight - slots);
	}

	/** When the next probe may go out: not while a create is awaiting its answer. */
	nextProbeInMs(now = Date.now()): number {
		if (this.pending > 0) return Number.POSITIVE_INFINITY;
		return Math.max(0, this.lastProbeAt + this.probeIntervalMs - now);
	}

	get knownLimit(): number | undefined {
		return Number.isFinite(this.limit) ? this.limit : undefined;
	}
}
