// Hand-written types for simulator/index.js (CometAPI Kling Omni Image simulator).

export type ImageFormat = 'png' | 'jpeg';
export type TaskStatus = 'submitted' | 'processing' | 'succeed' | 'failed';
export type FaultRoute = 'create' | 'query' | 'image';

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
	watermark: boolean;
	imageSizeBytes?: number;
	/** Size of generated results (aspect_ratio, long side 256 px). */
	dimensions: { width: number; height: number };
	/** The result URLs (served only once the task has succeeded). */
	images: ResultImage[];
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
	| 'oversize';

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
		| { type: 'status'; status: number; headers?: Record<string, string>; body?: object | string }
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
	);

/** A fault as queued: `remaining` counts down as requests consume it. */
export type QueuedFault = Fault & { times: number; remaining: number };

export interface Simulator {
	/** e.g. 'http://127.0.0.1:PORT' (no trailing slash): the credential's base URL. */
	readonly apiUrl: string;
	/** e.g. 'http://127.0.0.2:PORT2'. */
	readonly imageUrl: string;
	readonly apiKey: string;
	/** Resolved options. */
	readonly options: Required<Omit<SimulatorOptions, 'imageSizeBytes' | 'taskPlan' | 'clock'>> &
		Pick<SimulatorOptions, 'imageSizeBytes' | 'taskPlan' | 'clock'>;
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
	addFault(fault: Fault): QueuedFault;
	clearFaults(): void;
	/** Makes an existing task failed from now on, with this task_status_msg. */
	failTask(taskId: string, reason?: string): void;
	/** Existing tasks' image URLs (or one task's) answer `status` (default 404) from now on. */
	expireImages(options?: { status?: 403 | 404 | number; taskId?: string }): void;
	/** Clears requests, tasks, faults and used external_task_ids. */
	reset(): void;
	/** Closes both servers and destroys open sockets. */
	close(): Promise<void>;
}

export function startSimulator(options?: SimulatorOptions): Promise<Simulator>;

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
