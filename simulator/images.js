'use strict';
// Image generation for the CometAPI simulator: small, valid PNG and baseline JPEG files
// built with the Node stdlib only, optionally padded to a target size with ancillary
// chunks/segments. Images are described as "plans" (a list of buffer parts, some
// repeated) so a 20 MB image can be streamed without holding 20 MB in memory.

const zlib = require('node:zlib');
const crypto = require('node:crypto');

// ---------------------------------------------------------------------------
// CRC-32 (PNG chunk checksums). Table-driven; zlib.crc32 only exists from Node 20.15.

const CRC_TABLE = (() => {
	const table = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		table[n] = c >>> 0;
	}
	return table;
})();

function crc32(buf, crc = 0) {
	let c = ~crc >>> 0;
	for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
	return ~c >>> 0;
}

// ---------------------------------------------------------------------------
// Picture content: a diagonal two-colour gradient, optionally with a dark band at the
// bottom (used to make watermarked variants look different, not just hash different).

function styleFromSeed(seed) {
	const h = crypto.createHash('sha256').update(String(seed)).digest();
	return { from: [h[0], h[1], h[2]], to: [h[3], h[4], h[5]], band: false };
}

const REFERENCE_STYLE = { from: [30, 90, 200], to: [250, 180, 40], band: false };

function colourAt(style, width, height, x, y) {
	const t = ((width > 1 ? x / (width - 1) : 0) + (height > 1 ? y / (height - 1) : 0)) / 2;
	const dim = style.band && y >= height * 0.85 ? 0.4 : 1;
	return [0, 1, 2].map((i) => Math.round((style.from[i] + (style.to[i] - style.from[i]) * t) * dim));
}

function checkDimensions(width, height, max) {
	for (const [name, v] of [['width', width], ['height', height]]) {
		if (!Number.isInteger(v) || v < 1 || v > max) {
			throw new RangeError(`${name} must be an integer between 1 and ${max}, got ${v}`);
		}
	}
}

// ---------------------------------------------------------------------------
// PNG

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngChunk(type, data) {
	const typeBuf = Buffer.from(type, 'latin1');
	const out = Buffer.alloc(12 + data.length);
	out.writeUInt32BE(data.length, 0);
	typeBuf.copy(out, 4);
	data.copy(out, 8);
	out.writeUInt32BE(crc32(data, crc32(typeBuf)), 8 + data.length);
	return out;
}

/** Encodes an RGB 8-bit PNG; returns {head: signature+IHDR, body: IDAT+IEND} so padding can go between. */
function encodePngParts(width, height, style) {
	checkDimensions(width, height, 0x7fffffff);
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(width, 0);
	ihdr.writeUInt32BE(height, 4);
	ihdr[8] = 8; // bit depth
	ihdr[9] = 2; // colour type RGB
	const stride = width * 3 + 1;
	const raw = Buffer.alloc(stride * height); // filter byte 0 (None) on every row
	// Same maths as colourAt, unrolled: this loop runs once per pixel of large reference images.
	const fx = width > 1 ? 1 / (width - 1) : 0;
	const fy = height > 1 ? 1 / (height - 1) : 0;
	const [r0, g0, b0] = style.from;
	const [dr, dg, db] = [style.to[0] - r0, style.to[1] - g0, style.to[2] - b0];
	for (let y = 0; y < height; y++) {
		const dim = style.band && y >= height * 0.85 ? 0.4 : 1;
		let o = y * stride + 1;
		for (let x = 0; x < width; x++) {
			const t = (x * fx + y * fy) / 2;
			raw[o++] = Math.round((r0 + dr * t) * dim);
			raw[o++] = Math.round((g0 + dg * t) * dim);
			raw[o++] = Math.round((b0 + db * t) * dim);
		}
	}
	return {
		head: Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr)]),
		body: Buffer.concat([pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]),
	};
}

// ---------------------------------------------------------------------------
// Baseline JPEG: 3 components (YCbCr, no subsampling), every 8x8 block flat (DC only, all
// AC zero), standard luminance Huffman tables. Small encoder, but a real decodable file.

const JPEG_DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const JPEG_DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const JPEG_AC_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
// prettier-ignore
const JPEG_AC_VALUES = [
	0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
	0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
	0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
	0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
	0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
	0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
	0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
	0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
	0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
	0xf9, 0xfa,
];
// With a quantiser of 8 the quantised DC coefficient equals (block mean - 128).
const JPEG_QUANT = 8;

/** Canonical Huffman codes (JPEG Annex C) from the DHT bit counts and values. */
function huffmanCodes(bits, values) {
	const codes = new Map();
	let code = 0;
	let k = 0;
	for (let len = 1; len <= 16; len++) {
		for (let i = 0; i < bits[len - 1]; i++) codes.set(values[k++], { code: code++, len });
		code <<= 1;
	}
	return codes;
}

const DC_CODES = huffmanCodes(JPEG_DC_BITS, JPEG_DC_VALUES);
const EOB = huffmanCodes(JPEG_AC_BITS, JPEG_AC_VALUES).get(0x00);

function jpegSegment(marker, payload) {
	const out = Buffer.alloc(4 + payload.length);
	out[0] = 0xff;
	out[1] = marker;
	out.writeUInt16BE(payload.length + 2, 2);
	payload.copy(out, 4);
	return out;
}

/** Entropy-coded bit writer with 0xFF byte stuffing. */
class BitWriter {
	constructor(capacity) {
		this.buf = Buffer.alloc(capacity);
		this.pos = 0;
		this.acc = 0;
		this.nbits = 0;
	}
	write(value, len) {
		for (let i = len - 1; i >= 0; i--) {
			this.acc = (this.acc << 1) | ((value >>> i) & 1);
			if (++this.nbits === 8) this.flushByte();
		}
	}
	flushByte() {
		this.buf[this.pos++] = this.acc;
		if (this.acc === 0xff) this.buf[this.pos++] = 0x00;
		this.acc = 0;
		this.nbits = 0;
	}
	finish() {
		if (this.nbits > 0) this.write(0x7f, 8 - this.nbits); // pad with 1-bits
		return this.buf.subarray(0, this.pos);
	}
}

function writeDcDiff(bw, diff) {
	const magnitude = Math.abs(diff);
	const category = magnitude === 0 ? 0 : 32 - Math.clz32(magnitude);
	const { code, len } = DC_CODES.get(category);
	bw.write(code, len);
	if (category > 0) bw.write(diff > 0 ? diff : diff + (1 << category) - 1, category);
	bw.write(EOB.code, EOB.len);
}

function rgbToYcc([r, g, b]) {
	return [
		0.299 * r + 0.587 * g + 0.114 * b,
		128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
		128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
	];
}

function encodeJpegScan(width, height, style) {
	const bw8 = Math.ceil(width / 8);
	const bh8 = Math.ceil(height / 8);
	const bw = new BitWriter(bw8 * bh8 * 3 * 6 + 16); // worst case 24 bits per block, doubled by stuffing
	const prev = [0, 0, 0];
	for (let by = 0; by < bh8; by++) {
		for (let bx = 0; bx < bw8; bx++) {
			const cx = Math.min(bx * 8 + 4, width - 1);
			const cy = Math.min(by * 8 + 4, height - 1);
			const ycc = rgbToYcc(colourAt(style, width, height, cx, cy));
			for (let c = 0; c < 3; c++) {
				const dc = Math.max(-128, Math.min(127, Math.round((ycc[c] - 128) * 8 / JPEG_QUANT)));
				writeDcDiff(bw, dc - prev[c]);
				prev[c] = dc;
			}
		}
	}
	return bw.finish();
}

/** Encodes a baseline JPEG; returns {head: SOI+APP0, body: tables, frame, scan, EOI}. */
function encodeJpegParts(width, height, style) {
	checkDimensions(width, height, 0xffff);
	const app0 = jpegSegment(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]));
	const dqt = jpegSegment(0xdb, Buffer.concat([Buffer.from([0x00]), Buffer.alloc(64, JPEG_QUANT)]));
	const sofPayload = Buffer.alloc(15);
	sofPayload[0] = 8; // sample precision
	sofPayload.writeUInt16BE(height, 1);
	sofPayload.writeUInt16BE(width, 3);
	sofPayload[5] = 3;
	for (let c = 0; c < 3; c++) sofPayload.set([c + 1, 0x11, 0x00], 6 + c * 3);
	const sof0 = jpegSegment(0xc0, sofPayload);
	const dht = jpegSegment(
		0xc4,
		Buffer.from([0x00, ...JPEG_DC_BITS, ...JPEG_DC_VALUES, 0x10, ...JPEG_AC_BITS, ...JPEG_AC_VALUES]),
	);
	const sos = jpegSegment(0xda, Buffer.from([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]));
	return {
		head: Buffer.concat([Buffer.from([0xff, 0xd8]), app0]),
		body: Buffer.concat([dqt, sof0, dht, sos, encodeJpegScan(width, height, style), Buffer.from([0xff, 0xd9])]),
	};
}

// ---------------------------------------------------------------------------
// Padding: ancillary private PNG chunks ('zzPd': ancillary, private, safe to copy) or JPEG
// COM segments, filled with a fixed deterministic text so the full-size piece is built once.

const FILLER = Buffer.alloc(65536, 'cometapi-simulator padding. ');
const FORMATS = {
	png: {
		contentType: 'image/png',
		overhead: 12,
		maxData: 65536,
		encode: encodePngParts,
		padPiece: (len) => pngChunk('zzPd', FILLER.subarray(0, len)),
	},
	jpeg: {
		contentType: 'image/jpeg',
		overhead: 4,
		maxData: 65533,
		encode: encodeJpegParts,
		padPiece: (len) => jpegSegment(0xfe, FILLER.subarray(0, len)),
	},
};
const fullPieces = new Map(); // format -> the one full-size padding piece (~64 KB each)

function formatInfo(format) {
	const key = format === 'jpg' ? 'jpeg' : format;
	const info = FORMATS[key];
	if (!info) throw new RangeError(`Unsupported image format: ${format}`);
	return info;
}

/** Plan parts adding exactly `bytes` of padding (or nothing when it is smaller than one piece header). */
function paddingParts(format, bytes) {
	const info = formatInfo(format);
	if (!(bytes >= info.overhead)) return [];
	if (!fullPieces.has(info)) fullPieces.set(info, info.padPiece(info.maxData));
	const full = fullPieces.get(info);
	const count = Math.floor(bytes / full.length);
	const rest = bytes - count * full.length;
	if (rest === 0) return [{ buf: full, repeat: count }];
	if (rest >= info.overhead) return [{ buf: full, repeat: count }, { buf: info.padPiece(rest - info.overhead) }];
	// 0 < rest < overhead: shorten one full piece and add an empty one so the total stays exact.
	return [
		{ buf: full, repeat: count - 1 },
		{ buf: info.padPiece(info.maxData - (info.overhead - rest)) },
		{ buf: info.padPiece(0) },
	];
}

// ---------------------------------------------------------------------------
// Plans

/**
 * Encodes the base picture once; `planFromBase` then pads it to any size cheaply.
 * Returned object is small (a few KB for result-sized images) and safe to cache.
 */
function encodeBase(format, width, height, style) {
	const info = formatInfo(format);
	const { head, body } = info.encode(width, height, style);
	return { format: format === 'jpg' ? 'jpeg' : format, contentType: info.contentType, head, body };
}

function planFromBase(base, padTo) {
	const baseLength = base.head.length + base.body.length;
	const pad = padTo ? paddingParts(base.format, padTo - baseLength) : [];
	const parts = [{ buf: base.head }, ...pad.filter((p) => p.repeat !== 0), { buf: base.body }];
	const length = parts.reduce((sum, p) => sum + p.buf.length * (p.repeat ?? 1), 0);
	return { contentType: base.contentType, length, parts };
}

/** Yields the plan's bytes as Buffers, stopping after `limit` bytes (for truncation faults). */
function* planChunks(plan, limit = plan.length) {
	let left = limit;
	for (const part of plan.parts) {
		for (let i = 0; i < (part.repeat ?? 1); i++) {
			if (left <= 0) return;
			const chunk = part.buf.length <= left ? part.buf : part.buf.subarray(0, left);
			left -= chunk.length;
			yield chunk;
		}
	}
}

function planToBuffer(plan) {
	return Buffer.concat([...planChunks(plan)], plan.length);
}

// ---------------------------------------------------------------------------
// Public helpers

function referenceImage(format, width, height, options = {}) {
	const style = options.seed === undefined ? REFERENCE_STYLE : styleFromSeed(options.seed);
	return planToBuffer(planFromBase(encodeBase(format, width, height, style), options.padToBytes));
}

/** A valid RGB PNG of the given size (gradient). options.padToBytes pads it to about that size. */
function createReferencePng(width, height, options) {
	return referenceImage('png', width, height, options);
}

/** A valid baseline JPEG of the given size (blocky gradient). options.padToBytes pads it. */
function createReferenceJpeg(width, height, options) {
	return referenceImage('jpeg', width, height, options);
}

/** Format and dimensions from a PNG IHDR or JPEG SOFn header; undefined if not recognised. */
function readImageSize(buf) {
	if (buf.length >= 24 && buf.subarray(0, 8).equals(PNG_SIGNATURE) && buf.toString('latin1', 12, 16) === 'IHDR') {
		return { format: 'png', width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
	}
	if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return undefined;
	let pos = 2;
	while (pos + 4 <= buf.length) {
		if (buf[pos] !== 0xff) return undefined;
		const marker = buf[pos + 1];
		if (marker === 0xff) {
			pos++; // fill byte
			continue;
		}
		if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
			pos += 2; // standalone marker without a length
			continue;
		}
		const isSof = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
		if (isSof && pos + 9 <= buf.length) {
			return { format: 'jpeg', width: buf.readUInt16BE(pos + 7), height: buf.readUInt16BE(pos + 5) };
		}
		if (marker === 0xda || marker === 0xd9) return undefined; // scan/end before any frame header
		pos += 2 + buf.readUInt16BE(pos + 2);
	}
	return undefined;
}

module.exports = {
	crc32,
	createReferencePng,
	createReferenceJpeg,
	readImageSize,
	styleFromSeed,
	encodeBase,
	planFromBase,
	planChunks,
	planToBuffer,
};
