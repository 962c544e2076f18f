// Hand-written types for simulator/images.js (public helpers only).
export { createReferencePng, createReferenceJpeg, readImageSize } from './index';
export type { ReferenceImageOptions } from './index';

/** CRC-32 as used by PNG chunks; pass a previous value to continue a running checksum. */
export function crc32(buf: Uint8Array, crc?: number): number;
