// openssl for the tests' own PKIs (CAs, requests, certificates signed with
// them): one call that throws with openssl's own words, and the three steps
// the tests repeat. Paths are relative to `cwd` when one is given.
import { spawnSync } from 'node:child_process'

/** openssl ARGS in cwd: its stdout; a failure throws with the command line and openssl's stderr. */
export function openssl(args: string[], cwd?: string): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8', cwd, timeout: 60_000 })
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

/** A self-signed CA (openssl req -x509, a new RSA 2048 key without passphrase); ext: each an -addext value. */
export function selfSignedCa(o: { key: string; cert: string; subject: string; days: number; ext?: string[]; cwd?: string }): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      o.key,
      '-out',
      o.cert,
      '-days',
      String(o.days),
      '-subj',
      o.subject,
      ...(o.ext ?? []).flatMap((e) => ['-addext', e]),
    ],
    o.cwd,
  )
}

/** A new RSA 2048 key without passphrase and a request for it (openssl req -newkey). */
export function keyAndRequest(o: { key: string; csr: string; subject: string; cwd?: string }): void {
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', o.key, '-out', o.csr, '-subj', o.subject], o.cwd)
}

/** The certificate a CA issues for a request (openssl x509 -req), with the extensions in extfile. */
export function signRequest(o: {
  csr: string
  ca: string
  caKey: string
  serial: number
  days: number
  extfile: string
  out: string
  cwd?: string
}): void {
  openssl(
    [
      'x509',
      '-req',
      '-in',
      o.csr,
      '-CA',
      o.ca,
      '-CAkey',
      o.caKey,
      '-set_serial',
      String(o.serial),
      '-days',
      String(o.days),
      '-extfile',
      o.extfile,
      '-out',
      o.out,
    ],
    o.cwd,
  )
}
