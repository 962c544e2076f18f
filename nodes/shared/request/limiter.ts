/** Runs at most `max` of the given async jobs at a time, in the order they were submitted. */
export type Limiter = <T>(job: () => Promise<T>) => Promise<T>;

export function createLimiter(max: number): Limiter {
	let running = 0;
	const queue: Array<() => void> = [];

	const next = () => {
		if (running >= max) return;
		const start = queue.shift();
		if (start) start();
	};

	return async <T>(job: () => Promise<T>) =>
		await new Promise<T>((resolve, reject) => {
			queue.push(() => {
				running++;
				job()
					.then(resolve, reject)
					.finally(() => {
						running--;
						next();
					});
			});
			next();
		});
}
