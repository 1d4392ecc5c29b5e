/**
 * The storage formats of the original C RAZORFS (upstream commit 2a25872), as far as
 * `razorfs migrate` reads them. Written from the byte-by-byte description of the formats
 * (docs/FORMAT.md, "Legacy formats (C RAZORFS)"), not from the C code.
 *
 * All integers are little-endian; the structs are those of x86_64 glibc. Each record kind is
 * declared once, as a field table (record.ts's `cRecord`) that gives its layout and its `decode`,
 * beside a `validate*` that lists every problem of it, in src/migrate/c-format/:
 * - image.ts: the two layouts (file names, how names are addressed);
 * - nodes.ts: the nodes file header and node slots;
 * - names.ts: the names file header and its NUL-terminated names;
 * - content.ts: the content file header and the header of a compressed payload;
 * - wal.ts: the WAL header and entries.
 * Nothing else in src/migrate reads the bytes of a C record.
 */
export * from './c-format/image.js'
export * from './c-format/nodes.js'
export * from './c-format/names.js'
export * from './c-format/content.js'
export * from './c-format/wal.js'
