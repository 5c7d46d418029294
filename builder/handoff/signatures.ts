// The release signature ConfigMap, as oc-mirror v2 writes it to
// cluster-resources/signature-configmap.{json,yaml}
// (internal/pkg/clusterresources/clusterresources.go GenerateSignatureConfigMap
// and const.go, openshift/oc-mirror 855b64a3): ConfigMap
// openshift-config-managed/mirrored-release-signatures, labelled
// release.openshift.io/verification-signatures, one binaryData entry per
// signature: key sha256-<hex>-<n> (n counting from 1), value the signature
// file base64-encoded; a digest is taken once. The cluster version operator
// reads signatures from ConfigMaps with that label in that namespace.

import type { ReleaseSignatureFile } from './content.js'

export const SIGNATURE_NAMESPACE = 'openshift-config-managed'
export const SIGNATURE_CONFIGMAP = 'mirrored-release-signatures'
export const SIGNATURE_LABEL = 'release.openshift.io/verification-signatures'

export interface SignatureEntry {
  key: string
  base64: string
}

/** binaryData entries, in file-name order; none when there are no signatures. */
export function signatureEntries(signatures: ReleaseSignatureFile[]): SignatureEntry[] {
  const out: SignatureEntry[] = []
  const seen = new Set<string>()
  for (const s of signatures) {
    if (seen.has(s.hex)) continue
    seen.add(s.hex)
    out.push({ key: `sha256-${s.hex}-${out.length + 1}`, base64: s.data.toString('base64') })
  }
  return out
}

/**
 * signature-configmap.json as oc-mirror's json.Marshal writes it: compact,
 * fields in its ConfigMap struct's order (kind, apiVersion, metadata: name,
 * namespace, labels, annotations; binaryData), map keys sorted.
 */
export function signatureConfigMapJson(entries: SignatureEntry[], annotations: Record<string, string>): string {
  const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)))
  return JSON.stringify({
    kind: 'ConfigMap',
    apiVersion: 'v1',
    metadata: {
      name: SIGNATURE_CONFIGMAP,
      namespace: SIGNATURE_NAMESPACE,
      labels: { [SIGNATURE_LABEL]: '' },
      annotations: sorted(annotations),
    },
    binaryData: sorted(Object.fromEntries(entries.map((e) => [e.key, e.base64]))),
  })
}
