/**
 * A minimal ZIP reader and writer, enough for PyTorch's checkpoint format.
 *
 * Reader: finds the central directory from the end of the archive (ZIP64 included),
 * reads stored and deflated entries, and checks every entry's CRC-32. It reads from a
 * Buffer or straight from a file descriptor, so a checkpoint never has to fit in one
 * Buffer (Node refuses to read files over 2 GiB at once).
 *
 * Writer: stored entries only, written sequentially to a file descriptor, each entry's
 * data aligned to 64 bytes with a `FB` extra field of `Z` padding, exactly as PyTorch's
 * `PyTorchStreamWriter` does (caffe2/serialize/inline_container.cc `getPadding`), so
 * `torch.load(mmap=True)` can map tensors in place. ZIP64 records are added when an
 * entry's size or offset passes 4 GiB, as miniz does for PyTorch.
 */
import * as fs from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import * as zlib from 'node:zlib';
import { crc32 } from './crc32';
import { ERROR_CODES } from '../errors';

const BUFFER_MAX = bufferConstants.MAX_LENGTH;

/** Why an archive could not be read; `kind` lets callers word the error for their format. */
export class ZipError extends Error {
  readonly code: string = ERROR_CODES.zip;
  constructor(
    message: string,
    /** `not-zip`: no ZIP structure at all; `truncated`: the file ends early; `corrupt`: inconsistent; `unsupported`: valid but not handled. */
    readonly kind: 'not-zip' | 'truncated' | 'corrupt' | 'unsupported',
  ) {
    super(message);
    this.name = 'ZipError';
  }
}

/** Random access to the bytes of an archive. */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes from `offset` (the caller checks bounds first). The result may share memory with the source. */
  read(offset: number, length: number): Buffer;
  close(): void;
}

/** A ByteSource over a Buffer (reads are views, not copies). */
export function bufferSource(buf: Uint8Array): ByteSource {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    size: b.length,
    read: (offset, length) => b.subarray(offset, offset + length),
    close: () => undefined,
  };
}

/** A ByteSource over an open file (reads are fresh, 8-byte-aligned Buffers). */
export function fileSource(file: string): ByteSource {
  const fd = fs.openSync(file, 'r');
  let size: number;
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new Error(`EISDIR: illegal operation on a directory, read '${file}'`);
    size = st.size;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let open = true;
  return {
    size,
    read(offset, length) {
      // allocUnsafeSlow: never a slice of the shared pool, so typed-array views over it are aligned.
      const out = Buffer.allocUnsafeSlow(length);
      let done = 0;
      while (done < length) {
        const n = fs.readSync(fd, out, done, length - done, offset + done);
        if (n === 0) throw new ZipError(`file ended at byte ${offset + done} while reading ${length} bytes at ${offset}`, 'truncated');
        done += n;
      }
      return out;
    },
    close() {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

/** One file in the archive, from the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
const EOCD_SIZE = 22;
const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
/** Deflate expands at most 1032:1 (a 258-byte match coded in 2 bits), so a declared size above this is a lie. */
const MAX_DEFLATE_RATIO = 1032;

function u64(buf: Buffer, at: number, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(`${what} ${v} is too large`, 'corrupt');
  return Number(v);
}

/** True when the bytes start like a ZIP archive (a local header, or the end record of an empty one). */
export function looksLikeZip(head: Buffer): boolean {
  return head.length >= 4 && (head.readUInt32LE(0) === SIG_LOCAL || head.readUInt32LE(0) === SIG_EOCD);
}

/**
 * Reads a ZIP archive's directory and entries.
 * @example const z = new ZipReader(bufferSource(buf)); z.read('archive/data.pkl');
 */
export class ZipReader {
  /** Entries in central-directory order, by name. */
  readonly entries = new Map<string, ZipEntry>();

  constructor(readonly source: ByteSource) {
    this.readDirectory();
  }

  private readDirectory(): void {
    const src = this.source;
    const size = src.size;
    const startsLikeZip = size >= 4 && looksLikeZip(src.read(0, 4));
    const missingEnd = (what: string): never => {
      if (startsLikeZip) throw new ZipError(`${what}; the file starts like a zip archive but its end is missing (${size} bytes)`, 'truncated');
      throw new ZipError(what, 'not-zip');
    };
    if (size < EOCD_SIZE) missingEnd(`only ${size} bytes, too short for a zip archive`);
    // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
    const tailLen = Math.min(size, EOCD_SIZE + U16_MAX);
    const tail = src.read(size - tailLen, tailLen);
    let at = -1;
    for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tailLen) {
        at = i;
        break;
      }
    }
    if (at < 0) missingEnd('no end-of-central-directory record');
    const eocdPos = size - tailLen + at;
    let count = tail.readUInt16LE(at + 10);
    let cdSize = tail.readUInt32LE(at + 12);
    let cdOffset = tail.readUInt32LE(at + 16);
    if (tail.readUInt16LE(at + 4) !== 0 || tail.readUInt16LE(at + 6) !== 0) {
      throw new ZipError('multi-disk (split) zip archives are not supported', 'unsupported');
    }
    if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
      // ZIP64: the locator sits right before the end record and points at the ZIP64 end record.
      if (eocdPos < 20) throw new ZipError('ZIP64 end-of-central-directory locator is missing', 'corrupt');
      const loc = src.read(eocdPos - 20, 20);
      if (loc.readUInt32LE(0) !== SIG_ZIP64_LOCATOR) throw new ZipError('ZIP64 end-of-central-directory locator is missing', 'corrupt');
      const z64 = u64(loc, 8, 'ZIP64 end record offset');
      if (z64 + 56 > eocdPos) throw new ZipError(`ZIP64 end record offset ${z64} is out of range`, 'corrupt');
      const rec = src.read(z64, 56);
      if (rec.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw new ZipError('bad ZIP64 end-of-central-directory record', 'corrupt');
      count = u64(rec, 32, 'entry count');
      cdSize = u64(rec, 40, 'central directory size');
      cdOffset = u64(rec, 48, 'central directory offset');
    }
    if (cdOffset + cdSize > eocdPos) {
      if (startsLikeZip && cdOffset + cdSize > size) {
        throw new ZipError(`central directory (${cdSize} bytes at ${cdOffset}) extends past the end of the file (${size} bytes)`, 'truncated');
      }
      throw new ZipError(`central directory (${cdSize} bytes at ${cdOffset}) overlaps the end record at ${eocdPos}`, 'corrupt');
    }
    const cd = src.read(cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + CENTRAL_HEADER_SIZE > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) {
        throw new ZipError(`central directory entry ${i} of ${count} is damaged`, 'corrupt');
      }
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc32 = cd.readUInt32LE(p + 16);
      let compressedSize = cd.readUInt32LE(p + 20);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localHeaderOffset = cd.readUInt32LE(p + 42);
      const end = p + CENTRAL_HEADER_SIZE + nameLen + extraLen + commentLen;
      if (end > cd.length) throw new ZipError(`central directory entry ${i} of ${count} is damaged`, 'corrupt');
      const name = cd.toString(flags & 0x800 ? 'utf8' : 'latin1', p + CENTRAL_HEADER_SIZE, p + CENTRAL_HEADER_SIZE + nameLen);
      if (usize === U32_MAX || compressedSize === U32_MAX || localHeaderOffset === U32_MAX) {
        // The ZIP64 extra field holds, in order, only the values whose 32-bit field is saturated.
        let e = p + CENTRAL_HEADER_SIZE + nameLen;
        const eEnd = e + extraLen;
        let found = false;
        while (e + 4 <= eEnd) {
          const id = cd.readUInt16LE(e);
          const len = cd.readUInt16LE(e + 2);
          if (id === 0x0001) {
            let q = e + 4;
            const take = (what: string): number => {
              if (q + 8 > e + 4 + len) throw new ZipError(`ZIP64 extra field of '${name}' is too short`, 'corrupt');
              const v = u64(cd, q, what);
              q += 8;
              return v;
            };
            if (usize === U32_MAX) usize = take('size');
            if (compressedSize === U32_MAX) compressedSize = take('compressed size');
            if (localHeaderOffset === U32_MAX) localHeaderOffset = take('offset');
            found = true;
            break;
          }
          e += 4 + len;
        }
        if (!found) throw new ZipError(`entry '${name}' needs a ZIP64 extra field but has none`, 'corrupt');
      }
      if (flags & 0x1) throw new ZipError(`entry '${name}' is encrypted`, 'unsupported');
      this.entries.set(name, { name, method, crc32, compressedSize, size: usize, localHeaderOffset });
      p = end;
    }
  }

  /** The names of all entries, in directory order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Where an entry's data starts (after its local header), checked against the file size. */
  dataOffset(entry: ZipEntry): number {
    const size = this.source.size;
    if (entry.localHeaderOffset + LOCAL_HEADER_SIZE > size) {
      throw new ZipError(`entry '${entry.name}' starts at byte ${entry.localHeaderOffset}, past the end of the file (${size} bytes)`, 'truncated');
    }
    const h = this.source.read(entry.localHeaderOffset, LOCAL_HEADER_SIZE);
    if (h.readUInt32LE(0) !== SIG_LOCAL) throw new ZipError(`local header of '${entry.name}' is damaged`, 'corrupt');
    const start = entry.localHeaderOffset + LOCAL_HEADER_SIZE + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (start + entry.compressedSize > size) {
      throw new ZipError(
        `entry '${entry.name}' needs bytes ${start}..${start + entry.compressedSize} but the file has ${size}`,
        'truncated',
      );
    }
    return start;
  }

  /**
   * An entry's contents, inflated if needed, CRC-checked. The declared size is checked
   * before anything is read or inflated (against the file for a stored entry, against
   * what its compressed bytes can hold for a deflated one), and inflating stops at it.
   */
  read(name: string): Buffer {
    const entry = this.entries.get(name);
    if (!entry) throw new ZipError(`no entry '${name}'`, 'corrupt');
    if (entry.method !== 0 && entry.method !== 8) {
      throw new ZipError(`entry '${name}' uses compression method ${entry.method} (only stored and deflate are supported)`, 'unsupported');
    }
    if (entry.method === 0 && entry.compressedSize !== entry.size) {
      throw new ZipError(`stored entry '${name}' has compressed size ${entry.compressedSize} but size ${entry.size}`, 'corrupt');
    }
    if (entry.method === 8) {
      const most = entry.compressedSize * MAX_DEFLATE_RATIO + 1024;
      if (entry.size > most) {
        throw new ZipError(
          `entry '${name}' declares ${entry.size} bytes, but ${entry.compressedSize} deflated bytes inflate to at most ${most}`,
          'corrupt',
        );
      }
      if (entry.size > BUFFER_MAX) {
        throw new ZipError(`entry '${name}' declares ${entry.size} bytes, more than one Buffer holds (${BUFFER_MAX})`, 'unsupported');
      }
    }
    const raw = this.source.read(this.dataOffset(entry), entry.compressedSize);
    let data: Buffer;
    if (entry.method === 0) {
      data = raw;
    } else {
      try {
        // Never more than the declared size: a bomb stops at it instead of filling memory.
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new ZipError(`entry '${name}' inflates to more than its declared ${entry.size} bytes`, 'corrupt');
        }
        throw new ZipError(`entry '${name}' does not inflate: ${(e as Error).message}`, 'corrupt');
      }
      if (data.length !== entry.size) throw new ZipError(`entry '${name}' inflates to ${data.length} bytes, not ${entry.size}`, 'corrupt');
    }
    const crc = crc32(data);
    if (crc !== entry.crc32) {
      throw new ZipError(`CRC-32 mismatch in '${name}' (stored ${hex(entry.crc32)}, computed ${hex(crc)})`, 'corrupt');
    }
    return data;
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** Where the writer sends bytes: `write(chunk)` appends at the current end. */
export interface ByteSink {
  write(chunk: Uint8Array): void;
}

/** A ByteSink over an open file descriptor. */
export function fdSink(fd: number): ByteSink {
  return {
    write(chunk) {
      let done = 0;
      while (done < chunk.byteLength) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done);
    },
  };
}

/** PyTorch aligns every record's data to this many bytes. */
export const ALIGNMENT = 64;

interface WrittenEntry {
  name: Buffer;
  crc32: number;
  size: number;
  offset: number;
}

/**
 * Writes a ZIP archive of stored entries, sequentially, aligning each entry's data to
 * 64 bytes like PyTorch's writer.
 * @example const z = new ZipWriter(fdSink(fd)); z.add('archive/version', Buffer.from('3\n')); z.finish();
 */
export class ZipWriter {
  private cursor = 0;
  private readonly written: WrittenEntry[] = [];
  private readonly names = new Set<string>();
  private finished = false;

  /** `forceZip64` (for tests) writes ZIP64 records even for small archives. */
  constructor(private readonly sink: ByteSink, private readonly options: { forceZip64?: boolean } = {}) {}

  private emit(chunk: Uint8Array): void {
    this.sink.write(chunk);
    this.cursor += chunk.byteLength;
  }

  /** Adds one stored entry; `data` may be given in pieces. */
  add(name: string, data: Uint8Array | Uint8Array[]): void {
    if (this.finished) throw new Error('ZipWriter: add() after finish()');
    if (this.names.has(name)) throw new Error(`ZipWriter: duplicate entry '${name}'`);
    this.names.add(name);
    const parts = Array.isArray(data) ? data : [data];
    let size = 0;
    let crc = 0;
    for (const part of parts) {
      size += part.byteLength;
      crc = crc32(part, crc);
    }
    crc >>>= 0;
    const nameBuf = Buffer.from(name, 'utf8');
    const offset = this.cursor;
    const zip64 = this.options.forceZip64 || size >= U32_MAX || offset >= U32_MAX;
    // A local ZIP64 extra field carries both sizes (the offset lives only in the central directory).
    const zip64Len = zip64 ? 4 + 16 : 0;
    const start = offset + LOCAL_HEADER_SIZE + nameBuf.length + zip64Len + 4;
    const pad = (ALIGNMENT - (start % ALIGNMENT)) % ALIGNMENT;
    const header = Buffer.alloc(LOCAL_HEADER_SIZE + nameBuf.length + zip64Len + 4 + pad);
    header.writeUInt32LE(SIG_LOCAL, 0);
    header.writeUInt16LE(zip64 ? 45 : 20, 4); // version needed
    header.writeUInt16LE(0x800, 6); // names are UTF-8
    header.writeUInt16LE(0, 8); // stored
    header.writeUInt16LE(0, 10); // time
    header.writeUInt16LE(0x21, 12); // date 1980-01-01 (reproducible output)
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(zip64 ? U32_MAX : size, 18);
    header.writeUInt32LE(zip64 ? U32_MAX : size, 22);
    header.writeUInt16LE(nameBuf.length, 26);
    header.writeUInt16LE(zip64Len + 4 + pad, 28);
    nameBuf.copy(header, LOCAL_HEADER_SIZE);
    let e = LOCAL_HEADER_SIZE + nameBuf.length;
    if (zip64) {
      header.writeUInt16LE(0x0001, e);
      header.writeUInt16LE(16, e + 2);
      header.writeBigUInt64LE(BigInt(size), e + 4);
      header.writeBigUInt64LE(BigInt(size), e + 12);
      e += zip64Len;
    }
    header.write('FB', e, 'latin1');
    header.writeUInt16LE(pad, e + 2);
    header.fill('Z', e + 4);
    this.emit(header);
    for (const part of parts) this.emit(part);
    this.written.push({ name: nameBuf, crc32: crc, size, offset });
  }

  /** Writes the central directory and end records. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const cdOffset = this.cursor;
    const force = !!this.options.forceZip64;
    for (const w of this.written) {
      const bigSize = force || w.size >= U32_MAX;
      const bigOffset = force || w.offset >= U32_MAX;
      const extraLen = bigSize || bigOffset ? 4 + (bigSize ? 16 : 0) + (bigOffset ? 8 : 0) : 0;
      const h = Buffer.alloc(CENTRAL_HEADER_SIZE + w.name.length + extraLen);
      h.writeUInt32LE(SIG_CENTRAL, 0);
      h.writeUInt16LE(extraLen ? 45 : 20, 4); // version made by
      h.writeUInt16LE(extraLen ? 45 : 20, 6); // version needed
      h.writeUInt16LE(0x800, 8);
      h.writeUInt16LE(0, 10);
      h.writeUInt16LE(0, 12);
      h.writeUInt16LE(0x21, 14);
      h.writeUInt32LE(w.crc32, 16);
      h.writeUInt32LE(bigSize ? U32_MAX : w.size, 20);
      h.writeUInt32LE(bigSize ? U32_MAX : w.size, 24);
      h.writeUInt16LE(w.name.length, 28);
      h.writeUInt16LE(extraLen, 30);
      h.writeUInt32LE(bigOffset ? U32_MAX : w.offset, 42);
      w.name.copy(h, CENTRAL_HEADER_SIZE);
      if (extraLen) {
        let e = CENTRAL_HEADER_SIZE + w.name.length;
        h.writeUInt16LE(0x0001, e);
        h.writeUInt16LE(extraLen - 4, e + 2);
        e += 4;
        if (bigSize) {
          h.writeBigUInt64LE(BigInt(w.size), e);
          h.writeBigUInt64LE(BigInt(w.size), e + 8);
          e += 16;
        }
        if (bigOffset) h.writeBigUInt64LE(BigInt(w.offset), e);
      }
      this.emit(h);
    }
    const cdSize = this.cursor - cdOffset;
    const count = this.written.length;
    const zip64 = force || count >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
    if (zip64) {
      const z64Offset = this.cursor;
      const rec = Buffer.alloc(56);
      rec.writeUInt32LE(SIG_ZIP64_EOCD, 0);
      rec.writeBigUInt64LE(44n, 4); // size of the rest of this record
      rec.writeUInt16LE(45, 12);
      rec.writeUInt16LE(45, 14);
      rec.writeBigUInt64LE(BigInt(count), 24);
      rec.writeBigUInt64LE(BigInt(count), 32);
      rec.writeBigUInt64LE(BigInt(cdSize), 40);
      rec.writeBigUInt64LE(BigInt(cdOffset), 48);
      this.emit(rec);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(SIG_ZIP64_LOCATOR, 0);
      loc.writeBigUInt64LE(BigInt(z64Offset), 8);
      loc.writeUInt32LE(1, 16);
      this.emit(loc);
    }
    const end = Buffer.alloc(EOCD_SIZE);
    end.writeUInt32LE(SIG_EOCD, 0);
    end.writeUInt16LE(zip64 ? U16_MAX : count, 8);
    end.writeUInt16LE(zip64 ? U16_MAX : count, 10);
    end.writeUInt32LE(zip64 ? U32_MAX : cdSize, 12);
    end.writeUInt32LE(zip64 ? U32_MAX : cdOffset, 16);
    this.emit(end);
  }
}
