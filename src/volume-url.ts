/**
 * Telling a volume's URL from a data dir's path, and showing it without its password: plain string
 * work that the commands, the mount's status (src/fuse/) and the PostgreSQL backend
 * (src/storage/pg/url.ts, which parses the rest) all need.
 */

/** Is `spec` a PostgreSQL URL (rather than a path)? */
export function isPgUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec)
}

/** A PostgreSQL URL without its password, for messages, mountinfo and status (the same URL always reads the same). */
export function displayPgUrl(spec: string): string {
  const shown = new URL(spec)
  shown.password = ''
  shown.searchParams.delete('password')
  return decodeURIComponent(shown.toString())
}
