// A user CA and a server certificate it signs, made with openssl.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { keyAndRequest, selfSignedCa, signRequest } from './openssl.js'

export function userCa(dir: string, host = 'registry.lab.example') {
  selfSignedCa({
    cwd: dir,
    key: 'ca.key',
    cert: 'ca.crt',
    subject: '/CN=User CA',
    days: 30,
    ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign'],
  })
  keyAndRequest({ cwd: dir, key: 'srv.key', csr: 'srv.csr', subject: `/CN=${host}` })
  writeFileSync(join(dir, 'ext'), `subjectAltName=DNS:${host}\nextendedKeyUsage=serverAuth\n`)
  signRequest({ cwd: dir, csr: 'srv.csr', ca: 'ca.crt', caKey: 'ca.key', serial: 7, days: 20, extfile: 'ext', out: 'srv.crt' })
  return { ca: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'srv.crt'), key: join(dir, 'srv.key') }
}
