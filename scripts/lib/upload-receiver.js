'use strict';
/*
 * A loopback HTTP endpoint that accepts multipart file uploads, standing in for a chat service's file upload
 * (Slack) or a storage bucket. Used by example 3 in `npm start` and by the end-to-end tests.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

/**
 * @param {object} [options]
 * @param {number} [options.port]     default 0 (a free port)
 * @param {string} [options.saveDir]  when set, each uploaded file is also written there
 * @param {(upload: object) => void} [options.onUpload]
 * @returns {Promise<{url: string, uploads: object[], close(): Promise<void>}>}
 *   `url` is the upload endpoint (`http://127.0.0.1:PORT/upload`); each upload is
 *   {method, path, headers, fields: {name: value}, files: [{field, fileName, mimeType, bytes: Buffer}]}.
 */
async function startUploadReceiver({ port = 0, saveDir, onUpload } = {}) {
	const uploads = [];
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', async () => {
			const body = Buffer.concat(chunks);
			const contentType = req.headers['content-type'] || '';
			const upload = { method: req.method, path: req.url, headers: req.headers, fields: {}, files: [], size: body.length };
			try {
				if (!contentType.startsWith('multipart/form-data')) throw new Error(`expected multipart/form-data, got "${contentType}"`);
				// The WHATWG Response parses multipart bodies (Node 18+).
				const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
				for (const [field, value] of form.entries()) {
					if (typeof value === 'string') upload.fields[field] = value;
					else
						upload.files.push({
							field,
							fileName: value.name,
							mimeType: value.type,
							bytes: Buffer.from(await value.arrayBuffer()),
						});
				}
			} catch (error) {
				upload.error = error.message;
				uploads.push(upload);
				res.writeHead(400, { 'content-type': 'application/json' });
				res.end(JSON.stringify({ ok: false, error: error.message }));
				return;
			}
			const saved = [];
			if (saveDir) {
				fs.mkdirSync(saveDir, { recursive: true });
				for (const file of upload.files) {
					const target = path.join(saveDir, path.basename(file.fileName || `upload-${uploads.length}`));
					fs.writeFileSync(target, file.bytes);
					saved.push(target);
				}
			}
			uploads.push(upload);
			if (onUpload) onUpload(upload, saved);
			res.writeHead(200, { 'content-type': 'application/json' });
			res.end(
				JSON.stringify({
					ok: true,
					fields: upload.fields,
					files: upload.files.map((f) => ({
						field: f.field,
						file_name: f.fileName,
						mime_type: f.mimeType,
						size: f.bytes.length,
						sha256: crypto.createHash('sha256').update(f.bytes).digest('hex'),
					})),
				}),
			);
		});
	});
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, '127.0.0.1', resolve);
	});
	const url = `http://127.0.0.1:${server.address().port}/upload`;
	return {
		url,
		uploads,
		close: () =>
			new Promise((resolve) => {
				server.closeAllConnections?.();
				server.close(() => resolve());
			}),
	};
}

module.exports = { startUploadReceiver };
