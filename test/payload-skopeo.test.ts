// Pure pieces of the payload code, table-tested: skopeo argv, which skopeo
// failures are permanent, image reference parsing, payload names.

import t from 'tap'
import { isPermanentSkopeoError, skopeoCopyArgs, skopeoInspectArgs } from '../builder/tools/skopeo.js'
import { parseRef, sourceRef } from '../builder/payload/ref.js'
import { contentOciName } from '../builder/payload/names.js'
import { loadStackLock, pinnedRef } from '../builder/payload/lock.js'

t.same(skopeoCopyArgs({ src: 'docker://a/b@sha256:x', dest: 'oci:/c:stack/b', all: true, preserveDigests: true, authfile: '/p.json' }), [
  'copy',
  '--all',
  '--preserve-digests',
  '--authfile',
  '/p.json',
  'docker://a/b@sha256:x',
  'oci:/c:stack/b',
])
t.same(skopeoCopyArgs({ src: 's', dest: 'd', overrideArch: 'arm64', srcTlsVerify: false }), [
  '--override-arch',
  'arm64',
  'copy',
  '--src-tls-verify=false',
  's',
  'd',
])
t.same(skopeoInspectArgs({ ref: 'docker://x', raw: true, tlsVerify: false }), ['inspect', '--raw', '--tls-verify=false', 'docker://x'])

for (const [stderr, permanent] of [
  ['reading manifest 1 in quay.io/x/y: manifest unknown: manifest unknown', true],
  ['unable to retrieve auth token: invalid username/password: unauthorized: authentication required', true],
  ['reading manifest latest in registry.redhat.io/x: StatusCode: 404', true],
  ['pinging container registry 127.0.0.1:1: Get "https://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', false],
  ['reading blob sha256:ab: Get "https://cdn/x": net/http: TLS handshake timeout', false],
  ['received unexpected HTTP status: 503 Service Unavailable', false],
] as const) {
  t.equal(isPermanentSkopeoError(stderr), permanent, stderr)
}

t.same(parseRef('quay.io/projectquay/quay:3.15.0'), { repo: 'quay.io/projectquay/quay', tag: '3.15.0' })
t.same(parseRef('127.0.0.1:5000/a/b'), { repo: '127.0.0.1:5000/a/b' })
t.same(parseRef(`r.io/a:1@sha256:${'c'.repeat(64)}`), { repo: 'r.io/a', tag: '1', digest: `sha256:${'c'.repeat(64)}` })
t.throws(() => parseRef('r.io/a@sha256:short'), /bad digest/)
t.equal(sourceRef('r.io/a:1', `sha256:${'d'.repeat(64)}`), `r.io/a@sha256:${'d'.repeat(64)}`)
t.equal(contentOciName({ ref: 'quay.io/openshift/x:4.16', target: '/openshift/x/' }), 'content/openshift/x:4.16')
t.equal(contentOciName({ ref: `r.io/a@sha256:${'e'.repeat(64)}`, target: 'a' }), `content/a@sha256:${'e'.repeat(64)}`)

for (const flavor of ['quay', 'distribution'] as const) {
  const lock = loadStackLock(flavor)
  t.ok(lock.images.length > 0, `${flavor} lock has images`)
  for (const img of lock.images) {
    t.match(img.ociName, /^stack\/[a-z]+$/)
    t.ok(img.source && img.source.length > 20, `${img.name}: provenance recorded`)
    t.match(pinnedRef(img), /^[a-z0-9.\-/]+@sha256:[a-f0-9]{64}$/)
  }
}
t.same(
  loadStackLock('quay').images.map((i) => i.ociName),
  ['stack/quay', 'stack/redis'],
)
t.same(
  loadStackLock('distribution').images.map((i) => i.ref),
  ['docker.io/library/registry:2.8.3'],
)
