/**
 * The loopback upload receiver (scripts/lib/upload-receiver.js) as the tests see it: the endpoint the
 * examples' HTTP Request node posts each image to as a multipart file, and what it recorded.
 */

/** One multipart request the receiver got: its form fields and files, or why it could not be read. */
export interface Upload {
	method: string;
	path: string;
	headers: Record<string, string>;
	fields: Record<string, string>;
	files: Array<{ field: string; fileName: string; mimeType: string; bytes: Buffer }>;
	error?: string;
}

export interface UploadReceiver {
	/** The upload endpoint, http://127.0.0.1:PORT/upload. */
	url: string;
	uploads: Upload[];
	close(): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const receiver = require('../../scripts/lib/upload-receiver') as { startUploadReceiver(): Promise<UploadReceiver> };

/** Starts a receiver on a free loopback port. */
export const startUploadReceiver: () => Promise<UploadReceiver> = receiver.startUploadReceiver;
