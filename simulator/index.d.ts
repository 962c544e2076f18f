// Hand-written types for simulator/index.js (CometAPI Kling Omni Image simulator).

export type ImageFormat = 'png' | 'jpeg';
export type TaskStatus = 'submitted' | 'processing' | 'succeed' | 'failed';
export type FaultRoute = 'create' | 'query' | 'image';
/**
 * Wire spellings of the task status: 'contract' (submitted, processing, succeed, failed),
 * 'upper' (SUBMITTED … FAILED), 'capitalized' (Submitted … Failed), 'past' (succeed → succeeded;
 * failed stays failed, or canceled for a task stopped by failTask; submitted / processing unchanged).
 */
export type StatusSpellingPreset = 'contract' | 'upper' | 'capitalized' | 'past';
/** Own spelling: the word sent for a contract status; `stopped`: the task was failed by failTask. */
export type StatusSpeller = (status: TaskStatus, task: { taskId: string; stopped: boolean }) => string;

/** What `taskPlan` may decide for one task; anything left out uses the simulator options. */
export interface TaskPlan {
	outcome?: 'succeed' | 'failed';
	/** task_status_msg of a failed task. */
	failReason?: string;
	durationMs?: number;
	/** Number of result images (default: n for single, series_amount for series). */
	imageCount?: number;
	format?: ImageFormat | 'jpg';
	/** Pad this task's result images to about this many bytes. */
	imageSizeBytes?: number;
	/**
	 * None of this task's callbacks ever arrives (recorded with notDelivered, never sent): the provider
	 * documents no retry of a failed delivery, so a workflow must not depend on one.
	 */
	callbacksLost?: boolean;
	/** This task's own query lag (see the queryLagMs option). */
	queryLagMs?: number;
}

export interface SimulatorOptions {
	/** The one accepted Bearer key. Default 'sim-key'. */
	apiKey?: string;
	/** API server bind address. Default '127.0.0.1'. */
	apiHost?: string;
	/** Image server bind address. Default '127.0.0.2'. */
	imageHost?: string;
	/** Default 0 (random). */
	apiPort?: number;
	/** Default 0 (random). */
	imagePort?: number;
	/** Create → terminal state; 'processing' from half of it. Default 1000. */
	taskDurationMs?: number;
	/** 'http': errors as HTTP status; 'code200': HTTP 200 with the non-zero code body. Default 'http'. */
	errorStyle?: 'http' | 'code200';
	/** Default 'png'. */
	imageFormat?: ImageFormat | 'jpg';
	/** Pad generated result images to about this many bytes (still valid images). */
	imageSizeBytes?: number;
	/** Per-task decisions; taskNumber is 1-based since start or the last reset(). */
	taskPlan?: (createBody: any, taskNumber: number) => TaskPlan | undefined | void;
	/** Time source in ms. Default Date.now. */
	clock?: () => number;
	/** HTTP status of task_not_exist in 'http' style. Default 404. */
	taskNotExistStatus?: number;
	/** Larger create bodies get 413. Default 150 MiB. */
	maxBodyBytes?: number;

	/**
	 * Account parallel-task limit in slots (a task takes n / series_amount slots until it ends
	 * by the clock). A create over it gets code 1303 and creates nothing. Default undefined = unlimited.
	 */
	parallelSlots?: number;
	/** How 1303 is answered: 'http' = HTTP 429, 'code200' = HTTP 200. Default: errorStyle. */
	parallelLimitStyle?: 'http' | 'code200';
	/**
	 * Envelope of the simulator's own auth errors (missing / wrong key). 'comet': HTTP 401
	 * `{error: {message, type: 'comet_api_error', param: '', code: 'invalid_api_key'}}`
	 * whatever errorStyle says. Default 'kling' ({code: 401, message, request_id}).
	 */
	errorEnvelope?: 'kling' | 'comet';

	/**
	 * How task_status is spelled in everything sent (create and query answers, callback bodies,
	 * forged callbacks). Bookkeeping (taskStatus(), CallbackRecord.taskStatus) keeps the contract's
	 * words. Default 'contract'.
	 */
	statusSpelling?: StatusSpellingPreset | StatusSpeller;
	/**
	 * Queries are answered by a replica this many ms behind (by the clock): the status a task had
	 * queryLagMs ago, and task_not_exist (per errorStyle / taskNotExistStatus) for a task created
	 * less than queryLagMs ago. Callbacks and result images come from the primary, on time. Default 0.
	 */
	queryLagMs?: number;
	/** Success envelopes (create, query, wrapped callbacks) carry `error: null` beside `code: 0`. Default false. */
	successErrorNull?: boolean;

	/** Callback body wrapped as {code: 0, message: 'SUCCEED', data}. Default false (the task object). */
	callbackWrapped?: boolean;
	/** Extra deliveries of the final status callback. Default 1. (0 with callbackRetries 0: each status sent exactly once.) */
	callbackRepeats?: number;
	/** Retries of a failed delivery (connection error, timeout, non-2xx). Default 2. */
	callbackRetries?: number;
	/** Real-time wait before a retry. Default 100. */
	callbackRetryDelayMs?: number;
	/** Real-time wait before each repeat of the final status. Default 50. */
	callbackRepeatDelayMs?: number;
	/** How often (real time) the clock is checked for status changes while tasks may change. Default 20. */
	callbackPollMs?: number;
	/** Per-delivery timeout. Default 5000. */
	callbackTimeoutMs?: number;
	/**
	 * Deliver callbacks to non-loopback hosts too. Default false: only 127.x, localhost and ::1
	 * are called; other URLs are recorded with notDelivered: true (tests never leave the machine).
	 */
	callbackAllowRemote?: boolean;
}

export interface RecordedRequest {
	server: 'api' | 'image';
	method: string;
	/** Request target as received, including any query string. */
	path: string;
	/** Lowercased header names. */
	headers: Record<string, string | string[] | undefined>;
	/** Parsed JSON, else the raw text, else undefined when empty. */
	body: any;
	/** clock() when the request arrived. */
	at: number;
	/** 'create' | 'query' | 'other' on the API server, 'image' | 'other' on the image server. */
	route?: 'create' | 'query' | 'image' | 'other';
	/** HTTP status sent (undefined when the socket was dropped before any response). */
	status?: number;
	/** Type of the fault that hit this request, if any. */
	fault?: FaultType;
	/** How a cut response ended: socket destroyed, or ended (FIN) after a partial body. */
	cut?: 'destroy' | 'end';
	/** Create requests only: true when this request actually created a task. */
	afterCreate?: boolean;
	/** Created task (create), queried task (query) or served task (image). */
	taskId?: string;
	/** Image requests: result index and kind. */
	index?: number;
	kind?: 'main' | 'wm';
	/** Image requests that carried an Authorization header (answered 403). */
	rejectedAuthorization?: boolean;
	/** Create requests that passed validation: slots the task asks for (n / series_amount). */
	slots?: number;
	/** Create requests answered 1303 (parallel-task limit): nothing was created. */
	rejectedForLimit?: boolean;
	/** 'trickle' fault: bytes trickled so far. */
	trickledBytes?: number;
}

export interface ResultImage {
	index: number;
	url: string;
	watermark_url?: string;
}

export interface TaskRecord {
	id: string;
	/** 1-based since start or the last reset(). */
	number: number;
	/** The create body as received. */
	body: any;
	externalTaskId?: string;
	createdAt: number;
	durationMs: number;
	/** Outcome once durationMs has passed (failTask overrides it). */
	outcome: 'succeed' | 'failed';
	failReason: string;
	/** Set by failTask(). */
	failedAt?: number;
	/** Set by expireImages(): status the image URLs now answer. */
	expiredStatus?: number;
	format: ImageFormat;
	resultType: 'single' | 'series';
	imageCount: number;
	/** Parallel-task slots it holds until it ends (n / series_amount of the body). */
	slots: number;
	watermark: boolean;
	imageSizeBytes?: number;
	/** Size of generated results (aspect_ratio, long side 256 px). */
	dimensions: { width: number; height: number };
	/** The result URLs (served only once the task has succeeded). */
	images: ResultImage[];
	/** From taskPlan: none of its callbacks is sent. */
	callbacksLost: boolean;
	/** From taskPlan: its own query lag, else the simulator's. */
	queryLagMs?: number;
}

export type FaultType =
	| 'status'
	| 'code'
	| 'drop'
	| 'dropMidBody'
	| 'delay'
	| 'malformed'
	| 'contentType'
	| 'truncate'
	| 'oversize'
	| 'cometError'
	| 'redirect'
	| 'trickle';

interface FaultBase {
	route: FaultRoute;
	/** How many matching requests this fault applies to. Default 1. */
	times?: number;
	/**
	 * Create route only: whether the task is created before the fault strikes. Default true for
	 * delay, dropMidBody, truncate and contentType (they carry the normal response), else false.
	 */
	afterCreate?: boolean;
}

export type Fault = FaultBase &
	(
		/** Default body {code: code ?? status, message: message ?? status text, request_id}. */
		| {
				type: 'status';
				status: number;
				code?: number | string;
				message?: string;
				headers?: Record<string, string>;
				body?: object | string;
		  }
		| { type: 'code'; code: number | string; message?: string }
		| { type: 'drop' }
		/** Full Content-Length, `bytes` (default half) of the body, then the socket is destroyed. */
		| { type: 'dropMidBody'; bytes?: number }
		| { type: 'delay'; ms: number }
		/** HTTP 200 with a body that is not valid JSON (image route: not a valid image). */
		| { type: 'malformed'; body?: string }
		| { type: 'contentType'; contentType: string }
		/** Full Content-Length, `bytes` (default half) of the body, then the socket is ended. */
		| { type: 'truncate'; bytes?: number }
		/** Image route only: a valid-looking image padded to `bytes` bytes. */
		| { type: 'oversize'; bytes: number }
		/**
		 * create / query: CometAPI's envelope {error: {message, type, param, code}}; errorType
		 * defaults to 'comet_api_error', param and code to ''.
		 */
		| {
				type: 'cometError';
				status: number;
				message?: string;
				errorType?: string;
				param?: string | null;
				code?: string | number | null;
				headers?: Record<string, string>;
		  }
		/** `status` (default 302) with this Location (any URL) and a short text body. */
		| { type: 'redirect'; status?: 301 | 302 | 303 | 307 | 308; location: string; headers?: Record<string, string> }
		/**
		 * Headers at once, then one byte every intervalMs, `bytes` times (default: never ends),
		 * then the rest. JSON routes trickle spaces before the real body; the image route its own bytes.
		 */
		| { type: 'trickle'; intervalMs: number; bytes?: number }
	);

/** Faults on the simulator's own callback POSTs (route 'callback'); a failed attempt is retried. */
export type CallbackFault = { route: 'callback'; times?: number } & (
	/** Sends `bytes` (default half) of the body, then destroys the connection. */
	| { type: 'drop'; bytes?: number }
	/** Waits `ms` (real time) before sending. */
	| { type: 'delay'; ms: number }
);

/** A fault as queued: `remaining` counts down as requests consume it. */
export type QueuedFault = (Fault | CallbackFault) & { times: number; remaining: number };

export interface AccountStats {
	/** Creates that created a task. */
	acceptedCreates: number;
	/** Creates answered 1303 (over the parallel-task limit). */
	rejectedCreates: number;
	/** Most slots in use at once (this simulator's tasks plus occupySlots). */
	maxSlotsInUse: number;
	slotsInUse: number;
	/** The current limit; undefined = unlimited. */
	parallelSlots: number | undefined;
}

/** Slots held by "other workflows" on the account (occupySlots). */
export interface SlotHold {
	slots: number;
	/** Frees the slots now (by the clock). */
	release(): void;
}

/** One callback delivery attempt, recorded when it starts. */
export interface CallbackRecord {
	/** status: a status change; repeat: the final status again; forged / malformed: sent by a test. */
	kind: 'status' | 'repeat' | 'forged' | 'malformed';
	taskId?: string;
	/** task_status the body reports, in the contract's words (the body itself follows statusSpelling). */
	taskStatus?: TaskStatus;
	url: string;
	/** 1 for the first try, 2 and 3 for retries. */
	attempt: number;
	/** What was sent: the object (JSON-encoded on the wire) or, for malformed, the raw text. */
	body: any;
	/** Headers the simulator set (never an Authorization header or the API key). */
	headers: Record<string, string>;
	/** clock() when the attempt started. */
	at: number;
	/** The receiver's HTTP status (undefined when no response). */
	responseStatus?: number;
	/** Connection error, timeout, simulated drop, or why it was not delivered. */
	error?: string;
	/** true for a 2xx response. */
	ok: boolean;
	/** Not sent: the URL is not a loopback host and callbackAllowRemote is false. */
	notDelivered?: boolean;
	/** Callback fault that hit this attempt. */
	fault?: 'drop' | 'delay';
	/** sendMalformedCallback kind. */
	malformed?: MalformedCallbackKind;
}

export type MalformedCallbackKind = 'notJson' | 'noTaskId' | 'empty' | 'array';

export interface ForgedCallbackOptions {
	/** task_id to claim; an existing task's id forges its success early. Default: an id that does not exist. */
	taskId?: string;
	/** Where the forged result image points. Default 'http://127.0.0.3:9/forged/0.png'. */
	imageUrl?: string;
	/** Wrap in {code: 0, message: 'SUCCEED', data}. Default: callbackWrapped. */
	wrapped?: boolean;
	/** Send exactly this body instead. */
	body?: unknown;
}

/** Options that stay undefined unless given. */
type OptionalOptions = 'imageSizeBytes' | 'taskPlan' | 'clock' | 'parallelSlots' | 'parallelLimitStyle';

export interface Simulator {
	/** e.g. 'http://127.0.0.1:PORT' (no trailing slash): the credential's base URL. */
	readonly apiUrl: string;
	/** e.g. 'http://127.0.0.2:PORT2'. */
	readonly imageUrl: string;
	readonly apiKey: string;
	/** Resolved options. */
	readonly options: Required<Omit<SimulatorOptions, OptionalOptions>> & Pick<SimulatorOptions, OptionalOptions>;
	/** Every request received by both servers, in arrival order (same array across reset()). */
	readonly requests: RecordedRequest[];
	readonly tasks: Map<string, TaskRecord>;
	apiRequests(route?: 'create' | 'query' | 'other'): RecordedRequest[];
	imageRequests(): RecordedRequest[];
	/** Current status of a task by the clock. Throws for unknown ids. */
	taskStatus(taskId: string): TaskStatus;
	/** Exactly the bytes the image server serves (or served) for a result URL. Throws if unknown. */
	expectedImageBytes(url: string): Buffer;
	/** Queues a fault (FIFO per route). Throws TypeError for invalid faults. */
	addFault(fault: Fault | CallbackFault): QueuedFault;
	clearFaults(): void;
	/** Makes an existing task failed from now on, with this task_status_msg. */
	failTask(taskId: string, reason?: string): void;
	/** Existing tasks' image URLs (or one task's) answer `status` (default 404) from now on. */
	expireImages(options?: { status?: 403 | 404 | number; taskId?: string }): void;
	/** Changes the parallel-task limit (undefined = unlimited); RangeError unless a non-negative integer. */
	setParallelSlots(slots: number | undefined): void;
	/** Other workflows on the account hold `slots` for durationMs by the clock (default: until released). */
	occupySlots(slots: number, durationMs?: number): SlotHold;
	slotsInUse(): number;
	stats(): AccountStats;
	/** Every callback delivery attempt so far, in start order (a copy). */
	callbacks(): CallbackRecord[];
	/**
	 * Sends the status callbacks the clock says are due now and resolves once every delivery,
	 * retry and repeat in progress has finished. (A timer also sends them without this.)
	 */
	flushCallbacks(): Promise<void>;
	/** POSTs a forged success callback (no retries, no faults). TypeError unless url is http(s). */
	sendForgedCallback(url: string, options?: ForgedCallbackOptions): Promise<CallbackRecord>;
	/** POSTs a malformed callback: not JSON, a task without task_id, an empty body or a JSON array. */
	sendMalformedCallback(url: string, kind: MalformedCallbackKind): Promise<CallbackRecord>;
	/**
	 * Clears requests, tasks, faults, used external_task_ids, callback records (pending deliveries
	 * stop), occupied slots and stats; the parallel-task limit goes back to the option.
	 */
	reset(): void;
	/** Closes both servers and destroys open sockets. */
	close(): Promise<void>;
}

export function startSimulator(options?: SimulatorOptions): Promise<Simulator>;

export interface EchoRequest {
	method: string;
	path: string;
	/** Lowercased header names. */
	headers: Record<string, string | string[] | undefined>;
	/** Parsed JSON, else the text, else undefined. */
	body: any;
	rawBody: string;
	/** The request body did not arrive whole (the client cut the connection). */
	aborted: boolean;
	/** Date.now() when it arrived. */
	at: number;
}

export interface EchoAnswer {
	status?: number;
	headers?: Record<string, string>;
	body?: string | object;
}

export interface EchoServer {
	/** e.g. 'http://127.0.0.3:PORT'. */
	readonly url: string;
	readonly host: string;
	readonly port: number;
	/** Every request in arrival order. */
	readonly requests: EchoRequest[];
	respondWith(answer: EchoAnswer | ((request: EchoRequest) => EchoAnswer | undefined) | undefined): void;
	/** Resolves with the requests once at least `count` arrived; rejects after timeoutMs (default 5000). */
	waitFor(count: number, timeoutMs?: number): Promise<EchoRequest[]>;
	clear(): void;
	close(): Promise<void>;
}

/**
 * A second loopback host (default 127.0.0.3, random port) that records every request and
 * answers 200 {"ok":true} unless told otherwise: a redirect target or a callback receiver.
 */
export function startEchoServer(options?: {
	host?: string;
	port?: number;
	respond?: EchoAnswer | ((request: EchoRequest) => EchoAnswer | undefined);
}): Promise<EchoServer>;

export interface ReferenceImageOptions {
	/** Different seeds give different colours. Default: a fixed blue→orange gradient. */
	seed?: string;
	/** Pad to about this many bytes with ancillary chunks / COM segments (still valid). */
	padToBytes?: number;
}

/** A valid RGB PNG of these dimensions. */
export function createReferencePng(width: number, height: number, options?: ReferenceImageOptions): Buffer;
/** A valid baseline JPEG of these dimensions (max 65535 per side). */
export function createReferenceJpeg(width: number, height: number, options?: ReferenceImageOptions): Buffer;
/** Format and dimensions from PNG IHDR / JPEG SOFn; undefined when not a PNG/JPEG. */
export function readImageSize(buf: Buffer): { format: ImageFormat; width: number; height: number } | undefined;
