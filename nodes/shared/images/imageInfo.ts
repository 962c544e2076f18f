export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif';

export const MIME_TYPES: Record<ImageFormat, string> = {
	png: 'image/png',
	jpeg: 'image/jpeg',
	webp: 'image/webp',
	gif: 'image/gif',
};

const EXTENSIONS: Record<string, string> = {
	'image/png': 'png',
	'image/jpeg': 'jpg',
	'image/jpg': 'jpg',
	'image/webp': 'webp',
	'image/gif': 'gif',
};

/** The format from the file's first bytes, whatever its name or declared MIME type says. */
export function sniffImageFormat(bytes: Buffer): ImageFormat | undefined {
	if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47 && bytes.readUInt32BE(4) === 0x0d0a1a0a) {
		return 'png';
	}
	if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
	if (bytes.length >= 12 && bytes.toString('ascii', 0, 4) === 'RIFF' && bytes.toString('ascii', 8, 12) === 'WEBP') {
		return 'webp';
	}
	if (bytes.length >= 6 && bytes.toString('ascii', 0, 4) === 'GIF8') return 'gif';
	return undefined;
}

export function extensionForMimeType(mimeType: string): string {
	return EXTENSIONS[mimeType.toLowerCase()] ?? 'bin';
}

export interface Dimensions {
	width: number;
	height: number;
}

/** PNG size from the IHDR chunk, which the format requires to come first. */
function pngDimensions(bytes: Buffer): Dimensions | undefined {
	if (bytes.length < 24 || bytes.toString('ascii', 12, 16) !== 'IHDR') return undefined;
	return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

const JPEG_FRAME_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** JPEG size from the first start-of-frame segment, walking the segment list. */
function jpegDimensions(bytes: Buffer): Dimensions | undefined {
	let offset = 2;
	while (offset + 4 <= bytes.length) {
		if (bytes[offset] !== 0xff) return undefined;
		const marker = bytes[offset + 1];
		if (marker === 0xff) {
			offset++;
			continue;
		}
		if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
			offset += 2;
			continue;
		}
		const length = bytes.readUInt16BE(offset + 2);
		if (JPEG_FRAME_MARKERS.has(marker)) {
			if (offset + 9 > bytes.length) return undefined;
			return { height: bytes.readUInt16BE(offset + 5), width: bytes.readUInt16BE(offset + 7) };
		}
		offset += 2 + length;
	}
	return undefined;
}

export function imageDimensions(bytes: Buffer, format: ImageFormat): Dimensions | undefined {
	if (format === 'png') return pngDimensions(bytes);
	if (format === 'jpeg') return jpegDimensions(bytes);
	return undefined;
}
